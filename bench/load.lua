-- wrk script for `python -m bench`: valid Google push notifications, each with its own
-- message number. Channels are BENCH_PREFIX-000... (BENCH_CHANNELS of them, token BENCH_TOKEN),
-- or, when BENCH_IDS is set, that comma-separated list of ids with BENCH_TOKENS (channel i has
-- resource id "res-<i-1>"); BENCH_OMIT names a header left out (a request refused on its
-- headers). Prints one JSON line at the end (requests, errors, latency percentiles in µs).

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
  base = tonumber(os.getenv("BENCH_BASE"))
  omit = os.getenv("BENCH_OMIT") or ""
  ids = split(os.getenv("BENCH_IDS"))
  tokens = split(os.getenv("BENCH_TOKENS"))
  if #ids == 0 then
    local prefix = os.getenv("BENCH_PREFIX")
    for ch = 0, tonumber(os.getenv("BENCH_CHANNELS")) - 1 do
      ids[#ids + 1] = string.format("%s-%03d", prefix, ch)
    end
    tokens = {os.getenv("BENCH_TOKEN")}
  end
  counter = 0
end

function request()
  counter = counter + 1
  local i = counter % #ids
  local headers = {
    ["X-Goog-Channel-ID"] = ids[i + 1],
    ["X-Goog-Message-Number"] = string.format("%.0f", base + tid * 1e8 + counter),
    ["X-Goog-Resource-ID"] = "res-" .. i,
    ["X-Goog-Resource-State"] = "update",
    ["X-Goog-Resource-URI"] = "https://www.googleapis.com/drive/v3/files/F" .. i .. "?alt=json",
    ["X-Goog-Channel-Token"] = tokens[i % #tokens + 1],
    ["X-Goog-Channel-Expiration"] = "Tue, 19 Nov 2030 01:13:52 GMT",
    ["X-Goog-Changed"] = "content",
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
