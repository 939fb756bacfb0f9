-- wrk script for bench/outage.py --load wrk: distinct ~1 KB beacons (a fresh pv
-- per request, so every accepted beacon is one row), sent as text/plain.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local counter = 0
local body = [[{"v":1,"consent":"marketing","site":"demo","pv":"%s","seq":0,"sid":"s%s",]]
  .. [["release":"2026.11.3","url":"https://shop.example/p/42?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday",]]
  .. [["ref":"https://www.google.com/","dims":{"page_type":"product","ab_variant":"B"},]]
  .. [["device":{"vw":390,"vh":844,"dpr":3,"mem":4,"cpus":8,"ect":"4g"},]]
  .. [["nav":{"type":"navigate","ttfb":210,"dcl":950,"load":1400},]]
  .. [["metrics":[{"name":"LCP","value":2140.5,"id":"v5-1-1","delta":2140.5},{"name":"CLS","value":0.04,"id":"v5-1-2","delta":0.04}]}]]
local headers = {["Content-Type"] = "text/plain"}

request = function()
  counter = counter + 1
  local pv = string.format("wrk%02dx%010d", id, counter)
  return wrk.format("POST", "/beacon", headers, string.format(body, pv, pv))
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d timeouts=%d connect=%d read=%d write=%d\n",
    summary.requests, summary.errors.status, summary.errors.timeout, summary.errors.connect,
    summary.errors.read, summary.errors.write))
end
