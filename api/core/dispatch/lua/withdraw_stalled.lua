-- The watchdog takes a stalled assignment back: the order waits again and is never offered
-- to that courier again (it joins the order's declines). Only if nothing moved since the
-- watchdog judged it: still assigned, to that courier, by that assignment (assigned_ms).
-- ARGV: P, geo_status, order, courier, assigned_ms, now
local P, gs, o, c, at, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local okey = P .. ':o:' .. o
local st = redis.call('HGET', okey, 'state')
if not st then return {'no_order'} end
if st ~= 'assigned' then return {'order_state', st} end
if redis.call('HGET', okey, 'courier') ~= c or redis.call('HGET', okey, 'assigned_ms') ~= at then
  return {'order_state', 'reassigned'}
end
redis.call('SREM', P .. ':cs:' .. c, o)
move_order(P, o, st, 'waiting')
redis.call('HSET', okey, 'offer', '', 'courier', '')
redis.call('SADD', P .. ':dec:' .. o, c)
redis.call('PEXPIRE', P .. ':dec:' .. o, DECLINES_TTL_MS)
settle_courier(P, gs, c, now)
requeue(P, o, now)
return {'unassigned', o, c}
