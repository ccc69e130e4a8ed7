-- The chef marked the food ready. ARGV: P, order, at. Returns the courier to tell (an
-- accepted, not yet collected order), '' when nobody is on the way, false for no order.
local P, o, at = ARGV[1], ARGV[2], ARGV[3]
local okey = P .. ':o:' .. o
local od = redis.call('HMGET', okey, 'state', 'courier')
if not od[1] then return false end
redis.call('HSET', okey, 'food_ready_ms', at, 'ready_ms', at)
if od[1] == 'assigned' and od[2] then return od[2] end
return ''
