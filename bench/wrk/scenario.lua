-- wrk script for every bench scenario (bench/bench.py runs it).
--
--   wrk ... -s bench/wrk/scenario.lua URL -- SCENARIO WORKDIR THREADS
--
-- WORKDIR holds what bench.py prepared:
--   tokens.txt  line k+1 = an access token of bench user k
--   ids.txt     one "project_id owner_index" per line (every seeded project)
--   logins.txt  one login body per bench user, walked in turn by each thread
--
-- Each request picks a random project (and uses its owner's token) or a
-- random user, so the server sees the spread of ids and tokens that
-- pgbench's `random()` gives its ceiling. done() prints one JSON line that
-- starts with "BENCH_RESULT " for bench.py to read.

local scenario, tokens, ids, owners, logins
local next_login = 0
local counter = 0

-- Each thread gets its own seed, so threads do not replay one sequence,
-- and its index (for the logins, below).
local threads_seen = {}

function setup(thread)
   threads_seen[#threads_seen + 1] = thread
   counter = counter + 1
   thread:set("seed", counter * 7919 + os.time())
   thread:set("index", counter - 1)
end

local function lines(path)
   local out = {}
   local file = assert(io.open(path, "r"), "cannot open " .. path)
   for line in file:lines() do
      if line ~= "" then out[#out + 1] = line end
   end
   file:close()
   return out
end

local json_headers = { ["Content-Type"] = "application/json" }
local static_request

function init(args)
   scenario = args[1]
   local dir = args[2]
   math.randomseed(seed or os.time())
   if scenario == "health" then
      static_request = wrk.format("GET", "/health/live")
      return
   end
   if scenario == "login" then
      -- Thread t of n logs in the users t, t + n, t + 2n, …: two threads
      -- never hold logins of one account at once, which the server's
      -- per-account throttle would answer with 429 from the third
      -- concurrent check on.
      local threads = tonumber(args[3]) or 1
      logins = {}
      for i, body in ipairs(lines(dir .. "/logins.txt")) do
         if (i - 1) % threads == (index or 0) % threads then
            logins[#logins + 1] = wrk.format("POST", "/api/v1/auth/login", json_headers, body)
         end
      end
      next_login = math.random(#logins)
      -- Logins are few per second: worth saying which status an error had
      -- (counted per status: a refusing server answers thousands a second).
      bad = {}
      response = function(status)
         if status >= 400 then bad[status] = (bad[status] or 0) + 1 end
      end
      return
   end
   tokens = {}
   for i, token in ipairs(lines(dir .. "/tokens.txt")) do
      tokens[i] = "Bearer " .. token
   end
   if scenario == "get" or scenario == "patch" then
      ids, owners = {}, {}
      for i, line in ipairs(lines(dir .. "/ids.txt")) do
         local id, owner = line:match("^(%S+)%s+(%d+)$")
         ids[i] = id
         owners[i] = tonumber(owner) + 1
      end
   end
end

local create_body = '{"name":"Bench project","description":"Created by the create scenario of the bench."}'
local patch_body = '{"description":"Patched by the patch scenario of the bench."}'

function request()
   if static_request then
      return static_request
   end
   if logins then
      next_login = next_login % #logins + 1
      return logins[next_login]
   end
   if scenario == "get" then
      local n = math.random(#ids)
      return wrk.format("GET", "/api/v1/projects/" .. ids[n],
         { Authorization = tokens[owners[n]] })
   elseif scenario == "list" then
      return wrk.format("GET", "/api/v1/projects?limit=20",
         { Authorization = tokens[math.random(#tokens)] })
   elseif scenario == "create" then
      return wrk.format("POST", "/api/v1/projects",
         { Authorization = tokens[math.random(#tokens)], ["Content-Type"] = "application/json" },
         create_body)
   elseif scenario == "patch" then
      local n = math.random(#ids)
      -- `If-Match: *`: the project must exist, any version will do. A real
      -- version would need a GET first, and concurrent patches of one id
      -- from other threads would make it stale (412, an error here).
      return wrk.format("PATCH", "/api/v1/projects/" .. ids[n],
         { Authorization = tokens[owners[n]], ["Content-Type"] = "application/json",
           ["If-Match"] = "*" },
         patch_body)
   end
   error("unknown scenario " .. tostring(scenario))
end

function done(summary, latency, requests)
   local e = summary.errors
   -- How many failed logins had each status: {"429":2,"503":1}.
   local counts = {}
   for _, thread in ipairs(threads_seen) do
      for status, n in pairs(thread:get("bad") or {}) do
         counts[status] = (counts[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(counts) do
      parts[#parts + 1] = string.format('"%d":%d', status, n)
   end
   local bad = "{" .. table.concat(parts, ",") .. "}"
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"failed_statuses":%s,' ..
      '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout, bad,
      latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end
