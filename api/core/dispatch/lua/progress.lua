-- A courier reports progress on an order it holds (COURIER_REPORTS); a delivered order
-- leaves its courier and its hash expires after CLOSED_ORDER_TTL_MS.
-- ARGV: P, geo_status, order, courier, new, now
local P, gs, o, c, new, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local okey = P .. ':o:' .. o
local od = redis.call('HMGET', okey, 'state', 'courier')
if not od[1] or od[2] ~= c then return {'no_order'} end
if not (COURIER_REPORTS[od[1]] and COURIER_REPORTS[od[1]][new]) then return {'bad_transition', od[1]} end
move_order(P, o, od[1], new)
redis.call('HSET', okey, new .. '_ms', now)
if new == 'delivered' then
  redis.call('SREM', P .. ':os:delivered', o)
  redis.call('PEXPIRE', okey, CLOSED_ORDER_TTL_MS)
  redis.call('SREM', P .. ':cs:' .. c, o)
end
settle_courier(P, gs, c, now)
return {new, o, c}
