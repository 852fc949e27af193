-- wrk script: every request from another client address, as a browser
-- sends it (user agent and Accept-Language), so the fraud click rules see
-- ordinary traffic rather than one address clicking thousands of times.
-- The address travels in X-Forwarded-For: serve Tribute with --trust-proxy.
--
--   BENCH_WRK_SCRIPT=scripts/wrk-visitors.lua scripts/bench-redirect.sh
local ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
function init(args)
  math.randomseed(seed * 7919 + os.time())
end
function request()
  local ip = string.format("%d.%d.%d.%d", math.random(1, 223), math.random(0, 255),
    math.random(0, 255), math.random(1, 254))
  return wrk.format("GET", nil, {
    ["User-Agent"] = ua,
    ["Accept-Language"] = "en-US,en;q=0.9",
    ["X-Forwarded-For"] = ip,
  })
end
