// Live seat counts on the public pages: subscribe to every event shown and rewrite
// its "seats left" when the server says they changed. Without script the page still
// shows the counts of the moment it was served.
(function () {
  "use strict";
  var shown = document.querySelectorAll("[data-event-id]");
  if (!shown.length || typeof io !== "function") return;
  var ids = Array.prototype.map.call(shown, function (el) { return el.getAttribute("data-event-id"); });

  function seatsText(available) {
    if (available <= 0) return "Full";
    return available === 1 ? "1 seat left" : available + " seats left";
  }
  function update(payload) {
    if (!payload || typeof payload.availableSeats !== "number") return;
    var targets = document.querySelectorAll('[data-seats-for="' + payload.eventId + '"]');
    Array.prototype.forEach.call(targets, function (el) {
      var words = seatsText(payload.availableSeats);
      if (el.textContent !== words) el.textContent = words;
    });
  }

  var socket = io({ transports: ["websocket"] });
  socket.on("connect", function () {
    // On every (re)connection: what changed while away comes with the acknowledgement.
    ids.forEach(function (id) {
      socket.emit("subscribe", { eventId: id }, function (ack) { if (ack && ack.ok) update(ack.result); });
    });
  });
  socket.on("event.availability", update);
  socket.on("event.updated", update);
  socket.on("waitlist.promoted", update);
  document.documentElement.setAttribute("data-live", "connecting");
  socket.on("connect", function () { document.documentElement.setAttribute("data-live", "on"); });
})();
