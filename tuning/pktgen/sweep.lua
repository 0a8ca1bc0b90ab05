-- tuning/pktgen/sweep.lua: offered-rate sweep and zero-loss search through ipsec-dataplane,
-- run inside DPDK-Pktgen (built with -Denable_lua=true):
--
--   pktgen <EAL args> -- -P -m "[2:3].0,[4:5].1" -s 0:inside.pcap -s 1:outside.pcap \
--          -f tuning/pktgen/sweep.lua
--
-- Each trial clears the counters, sends the pcaps at one rate (percent of the link speed,
-- pktgen's unit) for SWEEP_SECONDS, stops, waits for the queues to drain and pktgen's
-- once-a-second counters to settle, then compares, for each pair "S>R", what port S sent
-- with what port R received: port 0 sends plaintext that the gateway encrypts toward port
-- 1, port 1 sends ESP that the gateway decrypts toward port 0. One CSV row per pair and
-- trial goes to SWEEP_OUT.
--
-- Settings (environment variables, all optional):
--   SWEEP_PAIRS    "0>1,1>0"           sender>receiver pairs; "0>1" alone measures encap only
--   SWEEP_RATES    "10,20,40,60,80,100" rates tried in order, percent of link speed
--   SWEEP_SEARCH   "1"                 then bisect between the highest rate without loss and
--                                      the lowest with loss ("0": the list only)
--   SWEEP_STEPS    "6"                 bisection steps (the bracket halves each step)
--   SWEEP_SECONDS  "10"                seconds per trial
--   SWEEP_LOSS     "0"                 loss (percent of sent) still counted as no loss
--   SWEEP_OUT      "sweep.csv"         CSV output
--   SWEEP_QUIT     "1"                 quit pktgen at the end ("0": stay at the prompt)

local function env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end

-- pktgen's printf lives in its Pktgen.lua module; this script needs nothing from it.
local function say(fmt, ...)
    io.write(string.format(fmt, ...))
    io.flush()
end

local function split(text, sep)
    local out = {}
    for item in string.gmatch(text, "[^" .. sep .. "]+") do
        table.insert(out, item)
    end
    return out
end

local pairs_spec = env("SWEEP_PAIRS", "0>1,1>0")
local rates = {}
for _, r in ipairs(split(env("SWEEP_RATES", "10,20,40,60,80,100"), ",")) do
    table.insert(rates, tonumber(r))
end
local search = env("SWEEP_SEARCH", "1") == "1"
local steps = tonumber(env("SWEEP_STEPS", "6"))
local seconds = tonumber(env("SWEEP_SECONDS", "10"))
local tolerance = tonumber(env("SWEEP_LOSS", "0"))
local out_path = env("SWEEP_OUT", "sweep.csv")
local quit = env("SWEEP_QUIT", "1") == "1"

-- pairs: { {tx = 0, rx = 1}, ... }; senders: the distinct sending ports, as a portlist.
local flows = {}
local senders = {}
local seen = {}
for _, p in ipairs(split(pairs_spec, ",")) do
    local s, r = string.match(p, "^%s*(%d+)%s*>%s*(%d+)%s*$")
    if s == nil then
        error("SWEEP_PAIRS: '" .. p .. "' is not SENDER>RECEIVER")
    end
    table.insert(flows, { tx = tonumber(s), rx = tonumber(r) })
    if not seen[s] then
        seen[s] = true
        table.insert(senders, s)
    end
end
local sendlist = table.concat(senders, ",")

local csv = assert(io.open(out_path, "w"))
csv:write("rate_pct,seconds,tx_port,rx_port,tx_pkts,rx_pkts,lost,loss_pct,tx_mpps,rx_mpps," ..
          "rx_imissed,rx_nombuf,rx_ierrors\n")
csv:flush()

-- One trial at `rate`: returns true when every pair lost at most `tolerance` percent.
local function trial(rate)
    pktgen.clr()
    pktgen.set(sendlist, "count", 0)
    pktgen.set(sendlist, "rate", rate)
    pktgen.start(sendlist)
    pktgen.sleep(seconds)
    pktgen.stop(sendlist)
    -- Frames still in the gateway's rings arrive within microseconds; pktgen refreshes the
    -- "port" counters once a second.
    pktgen.delay(2500)
    local stats = pktgen.portStats("all", "port")
    local clean = true
    for _, f in ipairs(flows) do
        local tx = stats[f.tx].opackets
        local rx = stats[f.rx].ipackets
        local lost = tx - rx
        local pct = 0
        if tx > 0 then
            pct = lost * 100.0 / tx
        end
        if tx == 0 or pct > tolerance then
            clean = false
        end
        local rxs = stats[f.rx]
        csv:write(string.format("%g,%d,%d,%d,%d,%d,%d,%.4f,%.3f,%.3f,%d,%d,%d\n",
            rate, seconds, f.tx, f.rx, tx, rx, lost, pct, tx / seconds / 1e6, rx / seconds / 1e6,
            rxs.imissed, rxs.rx_nombuf, rxs.ierrors))
        say("rate %g%%: port %d -> port %d: sent %d, received %d, lost %d (%.4f%%)\n",
            rate, f.tx, f.rx, tx, rx, lost, pct)
    end
    csv:flush()
    return clean
end

pktgen.screen("off")
local best, worst = nil, nil -- highest rate without loss, lowest rate with loss
for _, rate in ipairs(rates) do
    if trial(rate) then
        if best == nil or rate > best then
            best = rate
        end
    elseif worst == nil or rate < worst then
        worst = rate
    end
end
if search and worst ~= nil then
    -- Loss below a loss-free rate (a noisy trial) restarts the bracket at 0.
    local lo, hi = 0, worst
    if best ~= nil and best < worst then
        lo = best
    end
    for _ = 1, steps do
        if hi - lo < 0.1 then
            break
        end
        local mid = (lo + hi) / 2
        if trial(mid) then
            lo = mid
            best = mid
        else
            hi = mid
        end
    end
end
local verdict
if best == nil then
    verdict = "no rate was loss-free"
else
    verdict = string.format("zero-loss rate: %g%% of link speed (tolerance %g%%)", best, tolerance)
end
csv:write("# " .. verdict .. "\n")
csv:close()
say("%s; results in %s\n", verdict, out_path)
if quit then
    pktgen.quit()
end
