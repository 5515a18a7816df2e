-- wrk script for `python -m bench`: valid Google push notifications, each with its own
-- message number, spread over BENCH_CHANNELS channels named BENCH_PREFIX-000...
-- Prints one JSON line at the end (requests, errors, latency percentiles in microseconds).

local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

function init(args)
  prefix = os.getenv("BENCH_PREFIX")
  channels = tonumber(os.getenv("BENCH_CHANNELS"))
  base = tonumber(os.getenv("BENCH_BASE"))
  token = os.getenv("BENCH_TOKEN")
  counter = 0
end

function request()
  counter = counter + 1
  local ch = counter % channels
  local id = string.format("%s-%03d", prefix, ch)
  local headers = {
    ["X-Goog-Channel-ID"] = id,
    ["X-Goog-Message-Number"] = string.format("%.0f", base + tid * 1e8 + counter),
    ["X-Goog-Resource-ID"] = "res-" .. ch,
    ["X-Goog-Resource-State"] = "update",
    ["X-Goog-Resource-URI"] = "https://www.googleapis.com/drive/v3/files/F" .. ch .. "?alt=json",
    ["X-Goog-Channel-Token"] = token,
    ["X-Goog-Channel-Expiration"] = "Tue, 19 Nov 2030 01:13:52 GMT",
    ["X-Goog-Changed"] = "content",
    ["Content-Length"] = "0",
  }
  return wrk.format("POST", "/", headers, "")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
