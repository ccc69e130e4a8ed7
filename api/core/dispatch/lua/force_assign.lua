-- Force-assign by a fleet manager: same claim rule (courier idle), order FLEET_ASSIGNABLE
-- (an open offer of it is revoked). ARGV: P, geo_status, order, courier, now
local P, gs, o, c, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local okey = P .. ':o:' .. o
local st = redis.call('HGET', okey, 'state')
if not st then return {'no_order'} end
if not FLEET_ASSIGNABLE[st] then return {'order_state', st} end
if redis.call('HGET', P .. ':c:' .. c, 'state') ~= 'idle' then return {'courier_busy'} end
if st == 'offered' then
  local f = redis.call('HGET', okey, 'offer')
  local prev = redis.call('HGET', okey, 'courier')
  redis.call('HSET', P .. ':f:' .. f, 'state', 'revoked')
  redis.call('ZREM', P .. ':fexp', f)
  redis.call('HSET', P .. ':c:' .. prev, 'offer', '')
  settle_courier(P, gs, prev, now)
end
local region = redis.call('HGET', okey, 'region')
redis.call('ZREM', P .. ':q:' .. region, o)
redis.call('SADD', P .. ':cs:' .. c, o)
redis.call('HSET', P .. ':c:' .. c, 'offer', '', 'order', o)
move_order(P, o, st, 'assigned')
redis.call('HSET', okey, 'offer', '', 'courier', c, 'assigned_ms', now)
settle_courier(P, gs, c, now)
return {'assigned', o, c}
