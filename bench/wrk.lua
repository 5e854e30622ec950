-- wrk script for bench/run.py: cycles through the requests of a file, one per line as
-- "METHOD<TAB>PATH<TAB>BODY", each wrk thread taking its own share of the lines (so
-- POST /registration pairs are never sent twice by two threads), and prints one JSON
-- line with the figures. WRK_COUNT_STATUS=1 also counts the answers by status code
-- (defining response() costs wrk some speed, so only the POST run asks for it).

local threads = {}
local counter = 0

function setup(thread)
   thread:set("index", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local lines = {}
   for line in io.lines(args[1]) do
      table.insert(lines, line)
   end
   local share = tonumber(args[2])
   requests_ = {}
   local headers = { ["Content-Type"] = "application/json" }
   for i = index + 1, #lines, share do
      local method, path, body = lines[i]:match("^(%u+)\t([^\t]+)\t?(.*)$")
      if body == "" then
         table.insert(requests_, wrk.format(method, path))
      else
         table.insert(requests_, wrk.format(method, path, headers, body))
      end
   end
   if #requests_ == 0 then
      -- more threads than lines: this thread repeats the first line
      local method, path, body = lines[1]:match("^(%u+)\t([^\t]+)\t?(.*)$")
      table.insert(requests_, wrk.format(method, path, headers, body ~= "" and body or nil))
   end
   position = 0
   statuses = {}
end

function request()
   position = position % #requests_ + 1
   return requests_[position]
end

if os.getenv("WRK_COUNT_STATUS") == "1" then
   function response(status, headers, body)
      local key = tostring(status)
      statuses[key] = (statuses[key] or 0) + 1
   end
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      local seen = thread:get("statuses") or {}
      for status, n in pairs(seen) do
         counts[status] = (counts[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(counts) do
      table.insert(parts, string.format('"%s":%d', status, n))
   end
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99),
      summary.errors.connect, summary.errors.read, summary.errors.write,
      summary.errors.status, summary.errors.timeout, table.concat(parts, ",")))
end
