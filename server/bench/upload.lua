-- wrk script: POST a valid weekly report to /upload, with a fresh x and labels per request.
-- Matches server/bench/config.toml and a server started with --today 2026-11-25.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local buckets = {"0", "1", "10", "100", "1000"}
local engines = {"default", "pcre2", "other", "none"}
local oses = {"linux", "macos", "windows"}

request = function()
  local body = string.format(
    '{"format":1,"week":"2026-11-16","config":{"origin":"bench.clearcount.example/config","index":0},' ..
    '"x":%.17g,"programs":[{"name":"ripgrep","version":"14.1.0","os":"%s","arch":"x86_64",' ..
    '"counters":{"invocations":"%s","engine":"%s"}}]}',
    math.random(), oses[math.random(3)], buckets[math.random(5)], engines[math.random(4)])
  return wrk.format(nil, "/upload", nil, body)
end

local non200 = 0
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("requests: %d, reports/s: %.0f, p50: %.2f ms, p99: %.2f ms, errors: %d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
