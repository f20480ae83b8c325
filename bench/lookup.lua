-- wrk script for bench.screenpop: every request a different caller from NUMBERS_FILE.
local numbers = {}
for line in io.lines(os.getenv("NUMBERS_FILE")) do numbers[#numbers + 1] = line end
local offset = tonumber(os.getenv("OFFSET") or "0")
local auth = os.getenv("AUTH_HEADER")
local i = 0
request = function()
  i = i + 1
  local n = numbers[((offset + i) % #numbers) + 1]
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = auth},
                    '{"phoneNumber": "' .. n .. '"}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.0f %.0f %.0f %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.connect + e.read + e.write + e.status + e.timeout))
end
