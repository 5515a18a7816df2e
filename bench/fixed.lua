-- wrk script for `python -m bench` (refusals): notifications over a fixed list of channels.
-- BENCH_IDS and BENCH_TOKENS: comma-separated, channel i has resource id "res-<i-1>";
-- BENCH_OMIT: a header left out (a request refused on its headers); BENCH_BASE: message numbers.
-- Prints one JSON line at the end, like load.lua.

local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

local function split(text)
  local out = {}
  for part in string.gmatch(text or "", "([^,]+)") do
    out[#out + 1] = part
  end
  return out
end

function init(args)
  ids = split(os.getenv("BENCH_IDS"))
  tokens = split(os.getenv("BENCH_TOKENS"))
  omit = os.getenv("BENCH_OMIT") or ""
  base = tonumber(os.getenv("BENCH_BASE"))
  counter = 0
end

function request()
  counter = counter + 1
  local i = counter % #ids + 1
  local headers = {
    ["X-Goog-Channel-ID"] = ids[i],
    ["X-Goog-Message-Number"] = string.format("%.0f", base + tid * 1e8 + counter),
    ["X-Goog-Resource-ID"] = "res-" .. (i - 1),
    ["X-Goog-Resource-State"] = "update",
    ["X-Goog-Resource-URI"] = "https://www.googleapis.com/drive/v3/files/F" .. (i - 1) .. "?alt=json",
    ["X-Goog-Channel-Token"] = tokens[(i - 1) % #tokens + 1],
    ["X-Goog-Channel-Expiration"] = "Tue, 19 Nov 2030 01:13:52 GMT",
    ["Content-Length"] = "0",
  }
  if omit ~= "" then
    headers[omit] = nil
  end
  return wrk.format("POST", "/", headers, "")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
