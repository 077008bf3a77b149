-- wrk script: POST a valid weekly report to /upload. Matches server/bench/config.toml and a
-- server started with --today 2026-11-25.
-- The bodies (4,096 distinct reports, each with its own x, os and labels) are made once at start
-- and sent in turn: wrk shares the server's cores, and building a body per request in Lua cost
-- wrk about three times the CPU. Non-2xx answers are counted by wrk itself (errors.status).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local buckets = {"0", "1", "10", "100", "1000"}
local engines = {"default", "pcre2", "other", "none"}
local oses = {"linux", "macos", "windows"}
local prepared = {}
local next_request = 0

init = function(args)
  for i = 1, 4096 do
    local body = string.format(
      '{"format":1,"week":"2026-11-16","config":{"origin":"bench.clearcount.example/config","index":0},' ..
      '"x":%.17g,"programs":[{"name":"ripgrep","version":"14.1.0","os":"%s","arch":"x86_64",' ..
      '"counters":{"invocations":"%s","engine":"%s"}}]}',
      math.random(), oses[math.random(3)], buckets[math.random(5)], engines[math.random(4)])
    prepared[i] = wrk.format(nil, "/upload", nil, body)
  end
end

request = function()
  next_request = next_request % #prepared + 1
  return prepared[next_request]
end

done = function(summary, latency, requests)
  io.write(string.format("requests: %d, reports/s: %.0f, p50: %.2f ms, p99: %.2f ms, errors: %d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
