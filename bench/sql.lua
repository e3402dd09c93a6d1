-- wrk script for npm run bench: the same POST / JSON bodies for a sqlfleet node and for the
-- reference servers (bench/yardstick.mjs, bench/limit.mjs).
--
--   wrk -t2 -c32 -d10s --latency -s bench/sql.lua URL -- MODE PREFIX [N]
--
-- MODE
--   param    INSERT OR REPLACE INTO kv(k,v) VALUES (?,?), key and value as params; every
--            request a new key (PREFIX-<thread>-<n>)
--   literal  the same with key and value inlined: a new SQL text every request
--   read     SELECT v FROM kv WHERE k = ? for a random key PREFIX-0 .. PREFIX-(N-1), which
--            the caller wrote before (default N 1000)
--   batch    one request of 100 parameterized INSERT OR REPLACE rows, "transaction": true
--            (rows/s = requests/s x 100)
-- Every table needs CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) (the references make it).
-- At the end one line: RESULT {"requests":..,"errors":..,"rps":..,"p50_ms":..,"p99_ms":..}
-- (errors: answers with a status of 300 or more).

local all_threads = {}

function setup(thread)
  table.insert(all_threads, thread)
  thread:set("id", #all_threads)
end

local UPSERT = "INSERT OR REPLACE INTO kv(k,v) VALUES (?,?)"
local VALUE = string.rep("v", 100)
local HEADERS = { ["Content-Type"] = "application/json" }

local function param_row(key)
  return '{"query":"' .. UPSERT .. '","params":["' .. key .. '","' .. VALUE .. '"]}'
end

local bodies = {
  param = function(key)
    return '{"command":"exec","query":"' .. UPSERT .. '","params":["' .. key .. '","' .. VALUE .. '"]}'
  end,
  literal = function(key)
    return '{"command":"exec","query":"INSERT OR REPLACE INTO kv(k,v) VALUES (\'' .. key .. "','" .. VALUE .. '\')"}'
  end,
  batch = function(key)
    local rows = {}
    for i = 1, 100 do rows[i] = param_row(key .. "-" .. i) end
    return '{"command":"exec","transaction":true,"queries":[' .. table.concat(rows, ",") .. "]}"
  end,
  read = function()
    return '{"command":"query","query":"SELECT v FROM kv WHERE k = ?","params":["' .. prefix .. "-" .. math.random(0, keys - 1) .. '"]}'
  end,
}

function init(args)
  mode = args[1] or "param"
  prefix = args[2] or "k"
  keys = tonumber(args[3] or "1000")
  body_for = bodies[mode]
  if body_for == nil then error("sql.lua: unknown MODE " .. mode .. " (param, literal, read, batch)") end
  sent = 0
  errors = 0
  math.randomseed(id * 104729)
end

function request()
  sent = sent + 1
  return wrk.format("POST", "/", HEADERS, body_for(prefix .. "-" .. id .. "-" .. sent))
end

function response(status, headers, body)
  if status >= 300 then errors = errors + 1 end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(all_threads) do failed = failed + (thread:get("errors") or 0) end
  local seconds = summary.duration / 1e6
  io.write(string.format('RESULT {"requests":%d,"errors":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, failed, summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
