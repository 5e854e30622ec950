// Live counters on the console's event and check-in pages: when the event's
// Socket.IO room says something changed, read the counters again (the room's
// messages are public and name nobody; the numbers come from the console itself).
// Waiting-list joins are not broadcast, hence also a slow poll.
(function () {
  "use strict";
  var box = document.querySelector("[data-counters-for]");
  if (!box) return;
  var eventId = box.getAttribute("data-counters-for");
  var pending = null;

  function show(numbers) {
    var set = function (name, text) {
      var el = box.querySelector('[data-counter="' + name + '"]');
      if (el && el.textContent !== text) el.textContent = text;
    };
    set("registered", numbers.registered + " / " + numbers.maxAttendees);
    set("waiting", String(numbers.waiting));
    if (numbers.checkedIn !== null && numbers.checkedIn !== undefined) set("checkedIn", String(numbers.checkedIn));
  }
  function refresh() {
    if (pending) return;
    pending = fetch("/admin/events/" + eventId + "/counters", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (numbers) { if (numbers) show(numbers); })
      .catch(function () {})
      .then(function () { pending = null; });
  }
  setInterval(refresh, 15000);
  if (typeof io !== "function") return;
  var socket = io({ transports: ["websocket"] });
  socket.on("connect", function () { socket.emit("subscribe", { eventId: eventId }, refresh); });
  ["event.availability", "event.updated", "waitlist.promoted", "checkin.created", "checkin.reverted"].forEach(function (name) {
    socket.on(name, function (payload) { if (!payload || payload.eventId === eventId) refresh(); });
  });
})();
