-- Accept, decline or expire an offer (an accept after its expiry expires it). Refusals:
-- no_offer (unknown, or another courier's), not_open (with its state), not_due (expire).
-- A declined or expired offer's order waits again, remembering the courier (P:dec:<order>).
-- ARGV: P, geo_status, offer, action (accept|decline|expire), caller courier or '', now
local P, gs, f, action, caller, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local fkey = P .. ':f:' .. f
local off = redis.call('HMGET', fkey, 'order', 'courier', 'state', 'expires')
if not off[1] then return {'no_offer'} end
if caller ~= '' and caller ~= off[2] then return {'no_offer'} end
if off[3] ~= 'open' then return {'not_open', off[3]} end
if action == 'expire' and tonumber(now) < tonumber(off[4]) then return {'not_due'} end
if action == 'accept' and tonumber(now) > tonumber(off[4]) then action = 'expire' end
local o, c = off[1], off[2]
local ckey, okey = P .. ':c:' .. c, P .. ':o:' .. o
redis.call('ZREM', P .. ':fexp', f)
if action == 'accept' then
  redis.call('HSET', fkey, 'state', 'accepted')
  redis.call('HSET', ckey, 'offer', '')
  redis.call('SADD', P .. ':cs:' .. c, o)
  move_order(P, o, 'offered', 'assigned')
  redis.call('HSET', okey, 'offer', '', 'courier', c, 'assigned_ms', now)
  settle_courier(P, gs, c, now)
  return {'accepted', o, c}
end
local result = (action == 'decline') and 'declined' or 'expired'
redis.call('HSET', fkey, 'state', result)
if redis.call('HGET', ckey, 'offer') == f then
  redis.call('HSET', ckey, 'offer', '')
  settle_courier(P, gs, c, now)
end
if redis.call('HGET', okey, 'offer') == f then
  move_order(P, o, 'offered', 'waiting')
  redis.call('HSET', okey, 'offer', '', 'courier', '')
  redis.call('SADD', P .. ':dec:' .. o, c)
  redis.call('PEXPIRE', P .. ':dec:' .. o, DECLINES_TTL_MS)
  requeue(P, o, now)
end
return {result, o, c}
