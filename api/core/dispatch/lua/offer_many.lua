-- All of a round's claims in one call, in order, each with exactly the checks and effects of
-- offer.lua / offer_stacked.lua (a claim sees the effects of the ones before it, as it did
-- when they were separate scripts in one pipeline; the batch as a whole is atomic too). The
-- offers' state-set, queue, expiry-index and courier-status updates are applied once at the
-- end of the batch (flush_offers; no claim reads those keys, so every check and the end
-- state are the same): 7 Redis calls per idle claim.
-- ARGV: P, geo_status, now, expires, number of claims, then six newline-separated lists, one
-- entry per claim: kinds ('i' idle, 's' stacked), couriers, orders, offers, max_stack, held
-- (sorted, comma-separated). A few long arguments rather than 6 per claim: redis-py encodes
-- every argument in Python. Returns the results comma-separated, in order.
local P, gs, now, expires, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local function split(s)
  local out = {}
  for part in (s .. '\n'):gmatch('([^\n]*)\n') do out[#out + 1] = part end
  return out
end
local kind, cs, ords, fs, ms, hs = split(ARGV[6]), split(ARGV[7]), split(ARGV[8]),
  split(ARGV[9]), split(ARGV[10]), split(ARGV[11])
if #kind ~= n or #cs ~= n or #ords ~= n or #fs ~= n or #ms ~= n or #hs ~= n then
  return redis.error_reply('offer_many: malformed claims')
end
local out = {}
local pending = {orders = {}, fexp = {}, q = {}, gs = {}}
for i = 1, n do
  if kind[i] == 's' then
    out[i] = claim_stacked(P, gs, cs[i], ords[i], fs[i], now, expires, ms[i], hs[i], pending)
  else
    out[i] = claim_idle(P, gs, cs[i], ords[i], fs[i], now, expires, pending)
  end
end
flush_offers(P, gs, pending)
return table.concat(out, ',')
