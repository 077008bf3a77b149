-- wrk script: POST valid weekly reports to /upload, every one distinct (its own x), so that the
-- server stores each (the upload is idempotent: a repeated report would not be stored again).
-- Matches server/bench/config.toml and a server started with --today 2026-11-25.
-- 4,096 request templates (each with its own os and labels) are made once at start with an x
-- of fixed width, so that Content-Length stays right; each request only puts the next x of its
-- thread in place (three string pieces joined): wrk shares the server's cores, and building a
-- body per request with wrk.format cost wrk about three times the CPU. Non-2xx answers are
-- counted by wrk itself (errors.status).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local buckets = {"0", "1", "10", "100", "1000"}
local engines = {"default", "pcre2", "other", "none"}
local oses = {"linux", "macos", "windows"}
local MARK = "0.123456789012345"
local heads, tails = {}, {}
local next_request, sent = 0, 0
local threads, thread_id = {}, 0

setup = function(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
  table.insert(threads, thread)
end

init = function(args)
  for i = 1, 4096 do
    local body = string.format(
      '{"format":1,"week":"2026-11-16","config":{"origin":"bench.clearcount.example/config","index":0},' ..
      '"x":%s,"programs":[{"name":"ripgrep","version":"14.1.0","os":"%s","arch":"x86_64",' ..
      '"counters":{"invocations":"%s","engine":"%s"}}]}',
      MARK, oses[math.random(3)], buckets[math.random(5)], engines[math.random(4)])
    local req = wrk.format(nil, "/upload", nil, body)
    local at = string.find(req, MARK, 1, true)
    heads[i] = string.sub(req, 1, at - 1)
    tails[i] = string.sub(req, at + #MARK)
  end
end

request = function()
  next_request = next_request % #heads + 1
  sent = sent + 1
  -- 0.<thread><14 digits>: 15 significant digits, distinct per thread and request.
  local x = string.format("0.%d%014d", id, sent)
  return heads[next_request] .. x .. tails[next_request]
end

done = function(summary, latency, requests)
  io.write(string.format("requests: %d, reports/s: %.0f, p50: %.2f ms, p99: %.2f ms, errors: %d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
