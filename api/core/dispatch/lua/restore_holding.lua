-- Rebuild: a waiting order (just re-enqueued from the ORDERS stream) goes back to the courier
-- the DISPATCH stream says holds it, in the state it had (assigned, picked_up, delivering),
-- without an offer and without an event (the event is in the stream already). Anything but
-- waiting is left as it is (0): the live state moved on, or the order was never re-enqueued.
-- ARGV: P, geo_status, order, courier, state, now, then milestone field/value pairs.
local P, gs, o, c, st, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local okey = P .. ':o:' .. o
if redis.call('HGET', okey, 'state') ~= 'waiting' then return 0 end
local region = redis.call('HGET', okey, 'region')
redis.call('ZREM', P .. ':q:' .. region, o)
for i = 7, #ARGV, 2 do redis.call('HSET', okey, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', okey, 'offer', '', 'courier', c)
move_order(P, o, 'waiting', st)
redis.call('SADD', P .. ':cs:' .. c, o)
settle_courier(P, gs, c, now)
return 1
