-- wrk script for bench/ingest.py: POST /beacon with realistic, distinct beacons.
--
--   wrk -t1 -c64 -d8s --latency -s bench/wrk_beacons.lua http://127.0.0.1:PORT \
--       -- BEACON_FILE RUN_TAG
--
-- BEACON_FILE (written by bench/ingest.py) holds one beacon template a line:
--   user-agent TAB country TAB json-before-pv TAB json-pv-to-sid TAB json-after-sid
-- Each request takes the next template and puts a fresh page-view id in it:
-- RUN_TAG _ thread _ counter. Every pv of a run is new, so the collector's
-- idempotency key (site, pv, seq) never folds two requests into one row, and
-- the rows of one wrk run can be counted by their pv prefix. Every
-- SESSION_PAGE_VIEWS page views of a thread share a session id
-- (RUN_TAG _ thread _ s counter), so sessions are as short as a visit's, and
-- the fold, which recomputes a session over its page views, costs what it
-- costs on real traffic.
--
-- done() prints one line "BENCH_JSON {...}" that bench/ingest.py parses: wrk's
-- summary, latency percentiles (microseconds) and `sent`, the number of
-- requests handed to the sockets (completed + still in flight when wrk stopped).

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("tid", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

local SESSION_PAGE_VIEWS = 4
local prefixes, middles, suffixes, headers = {}, {}, {}, {}
local n, i, counter, tag = 0, 0, 0, ""
sent = 0

function init(args)
   local path, run_tag = args[1], args[2]
   if not path or not run_tag then
      error("usage: wrk ... -s wrk_beacons.lua URL -- BEACON_FILE RUN_TAG")
   end
   tag = run_tag .. "_" .. tostring(tid or 0) .. "_"
   for line in io.lines(path) do
      local ua, country, before, middle, after =
         line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$")
      if before then
         n = n + 1
         prefixes[n], middles[n], suffixes[n] = before, middle, after
         headers[n] = {
            -- what navigator.sendBeacon(url, string) sends: no CORS preflight
            ["Content-Type"] = "text/plain;charset=UTF-8",
            ["User-Agent"] = ua,
            ["Origin"] = "https://shop.example",
            -- a CDN in front of the collector says where the visitor is
            ["CF-IPCountry"] = country,
         }
      end
   end
   if n == 0 then error("no beacon templates in " .. path) end
end

function request()
   i = i % n + 1
   counter = counter + 1
   sent = counter
   local session = math.floor((counter - 1) / SESSION_PAGE_VIEWS)
   return wrk.format("POST", "/beacon", headers[i],
                     prefixes[i] .. tag .. counter .. middles[i] .. tag .. "s" .. session .. suffixes[i])
end

function done(summary, latency, requests)
   local total_sent = 0
   for _, thread in ipairs(threads) do
      total_sent = total_sent + (thread:get("sent") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"sent":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, summary.bytes, total_sent,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
