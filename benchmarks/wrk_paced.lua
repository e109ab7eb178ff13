-- wrk at a fixed request rate (wrk2 is not packaged in Debian). The first argument after "--"
-- is the rate in requests/s for the whole run (use wrk -t1). Every request, on whichever
-- connection, takes the next slot of one schedule with slots 1/rate apart: delay() returns the
-- time until that slot. The schedule runs on the monotonic clock (clock_gettime through
-- LuaJIT's ffi), so late timers do not lower the rate: the next waits are shorter. wrk's timers
-- have whole-millisecond resolution, so each wait is rounded down or up at random with the
-- probabilities that keep its mean exact. A server that falls behind gets requests as fast as
-- its connections free up (at most 50 ms of missed slots are made up, so a stall does not end
-- in an unbounded burst); the achieved rate shows it. Latency is measured by wrk from each
-- request's write. done() prints the same WRKJSON line as wrk_report.lua.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } aiostack_bench_timespec;
int clock_gettime(int clk_id, aiostack_bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("aiostack_bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local gap = 0          -- ms between slots
local next_slot = nil  -- ms, monotonic clock

function init(args)
  local rate = tonumber(args[1] or "0") or 0
  gap = rate > 0 and 1000 / rate or 0
  math.randomseed(os.time())
end

function delay()
  local now = now_ms()
  if next_slot == nil then
    next_slot = now
  elseif next_slot < now - 50 then
    next_slot = now - 50
  end
  local wait = next_slot - now
  next_slot = next_slot + gap
  if wait <= 0 then
    return 0
  end
  local base = math.floor(wait)
  if math.random() < wait - base then
    return base + 1
  end
  return base
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,'
    .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
    .. '"latency_us":{"mean":%.1f,"max":%.1f,"p50":%.1f,"p90":%.1f,"p99":%.1f,"p99.9":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
