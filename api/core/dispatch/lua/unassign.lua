-- A fleet manager takes an UNASSIGNABLE order back (an open offer is revoked): it waits
-- again. ARGV: P, geo_status, order, now
local P, gs, o, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local okey = P .. ':o:' .. o
local st = redis.call('HGET', okey, 'state')
if not st then return {'no_order'} end
if not UNASSIGNABLE[st] then return {'order_state', st} end
local c = redis.call('HGET', okey, 'courier')
if st == 'offered' then
  local f = redis.call('HGET', okey, 'offer')
  redis.call('HSET', P .. ':f:' .. f, 'state', 'revoked')
  redis.call('ZREM', P .. ':fexp', f)
  if redis.call('HGET', P .. ':c:' .. c, 'offer') == f then
    redis.call('HSET', P .. ':c:' .. c, 'offer', '')
  end
end
redis.call('SREM', P .. ':cs:' .. c, o)
move_order(P, o, st, 'waiting')
redis.call('HSET', okey, 'offer', '', 'courier', '')
settle_courier(P, gs, c, now)
requeue(P, o, now)
return {'unassigned', o, c}
