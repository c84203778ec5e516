-- wrk script for bench/lti-launch.sh: replay pre-signed LTI 1.1 launches, each exactly once.
--
--   wrk -t2 -c128 -d10s --latency -s bench/lti-launch.lua http://127.0.0.1:PORT -- BODIES PATH
--
-- BODIES is a file prefix: wrk thread number i (0-based) reads BODIES.i, one urlencoded form
-- body per line (bench/lti_bench.py sign writes them), so no two threads ever send the same
-- body. Each request POSTs the next unused body to PATH. A body is never sent twice: when a
-- thread has used all of its bodies, its connections stop sending (request() returns an empty
-- request, so the connection stays open and idle until wrk's clock runs out).
--
-- Responses are counted here, not from wrk's own summary (which only flags status > 399):
-- 2xx and 3xx are accepted launches, anything else is a refusal, counted by status code.
-- done() prints one machine-readable line, `LTIBENCH {json}`, that lti_bench.py record reads.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } ltibench_timespec;
int clock_gettime(int clk_id, ltibench_timespec *tp);
]]
local tsbuf = ffi.new("ltibench_timespec")
local function now() -- CLOCK_MONOTONIC, seconds; comparable across wrk threads
   ffi.C.clock_gettime(1, tsbuf)
   return tonumber(tsbuf.tv_sec) + tonumber(tsbuf.tv_nsec) * 1e-9
end

-- ---------------------------------------------------------------- main state (setup / done)
local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

-- ---------------------------------------------------------------- per-thread state
-- (globals, so that done() can read them with thread:get)
tid = tid or 0
bodies_total = 0
sent = 0
accepted = 0
refused = 0
codes = ""          -- "401:12,500:3", filled in from code_counts at the end of each response
exhausted = 0       -- 1 once this thread has run out of bodies
exhausted_at = 0
t_first = 0         -- first request sent by this thread
t_last = 0          -- last response received by this thread

local bodies = {}
local next_body = 1
local path = "/"
local headers = {}
local code_counts = {}

function init(args)
   local prefix = args[1]
   path = args[2] or wrk.path
   assert(prefix, "usage: wrk ... -s lti-launch.lua URL -- BODIES_PREFIX [PATH]")
   local name = prefix .. "." .. tid
   local f = assert(io.open(name, "r"), "cannot open " .. name)
   for line in f:lines() do
      if #line > 0 then
         bodies_total = bodies_total + 1
         bodies[bodies_total] = line
      end
   end
   f:close()
   headers["Host"] = wrk.headers["Host"]
   headers["Content-Type"] = "application/x-www-form-urlencoded"
   headers["Accept"] = "text/html"
end

function request()
   if next_body > bodies_total then
      if exhausted == 0 then
         exhausted = 1
         exhausted_at = now()
      end
      return "" -- send nothing more on this connection
   end
   if t_first == 0 then t_first = now() end
   local body = bodies[next_body]
   bodies[next_body] = nil -- never again
   next_body = next_body + 1
   sent = sent + 1
   return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
   t_last = now()
   if status >= 200 and status < 400 then
      accepted = accepted + 1
   else
      refused = refused + 1
      code_counts[status] = (code_counts[status] or 0) + 1
      local parts = {}
      for k, v in pairs(code_counts) do parts[#parts + 1] = k .. ":" .. v end
      codes = table.concat(parts, ",")
   end
end

-- ---------------------------------------------------------------- summary (main state)
function done(summary, latency, requests)
   local tot = { bodies = 0, sent = 0, accepted = 0, refused = 0, exhausted = 0 }
   local first, last, first_exhausted = math.huge, 0, math.huge
   local merged = {}
   for _, t in ipairs(threads) do
      tot.bodies = tot.bodies + t:get("bodies_total")
      tot.sent = tot.sent + t:get("sent")
      tot.accepted = tot.accepted + t:get("accepted")
      tot.refused = tot.refused + t:get("refused")
      tot.exhausted = tot.exhausted + t:get("exhausted")
      local tf, tl, te = t:get("t_first"), t:get("t_last"), t:get("exhausted_at")
      if tf > 0 and tf < first then first = tf end
      if tl > last then last = tl end
      if te > 0 and te < first_exhausted then first_exhausted = te end
      for k, v in string.gmatch(t:get("codes"), "(%d+):(%d+)") do
         merged[k] = (merged[k] or 0) + tonumber(v)
      end
   end
   if first == math.huge then first = 0 end
   if first_exhausted == math.huge then first_exhausted = 0 end
   local cparts = {}
   for k, v in pairs(merged) do cparts[#cparts + 1] = string.format('"%s":%d', k, v) end
   local e = summary.errors
   io.write(string.format(
      'LTIBENCH {"bodies":%d,"sent":%d,"accepted":%d,"refused":%d,"codes":{%s},' ..
      '"exhausted_threads":%d,"t_first":%.6f,"t_last":%.6f,"t_first_exhausted":%.6f,' ..
      '"duration_s":%.6f,"completed":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,' ..
      '"mean_ms":%.3f,"max_ms":%.3f,"socket_errors":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}}\n',
      tot.bodies, tot.sent, tot.accepted, tot.refused, table.concat(cparts, ","),
      tot.exhausted, first, last, first_exhausted,
      summary.duration / 1e6, summary.requests,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.mean / 1000, latency.max / 1000,
      e.connect + e.read + e.write + e.timeout,
      e.connect, e.read, e.write, e.timeout, e.status))
end
