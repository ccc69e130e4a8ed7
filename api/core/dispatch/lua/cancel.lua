-- Order cancelled upstream: release whatever it holds (its queue entry, its offer, its
-- courier); its hash expires after CLOSED_ORDER_TTL_MS (a cancellation before dispatch heard
-- of the order leaves only that state). ARGV: P, geo_status, order, now
local P, gs, o, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local okey = P .. ':o:' .. o
local od = redis.call('HMGET', okey, 'state', 'courier', 'offer', 'region')
if not od[1] then
  redis.call('HSET', okey, 'state', 'cancelled')
  redis.call('PEXPIRE', okey, CLOSED_ORDER_TTL_MS)
  return {'cancelled'}
end
if FINAL_ORDER_STATES[od[1]] then return {'noop', od[1]} end
redis.call('ZREM', P .. ':q:' .. od[4], o)
if od[1] == 'offered' then
  redis.call('HSET', P .. ':f:' .. od[3], 'state', 'revoked')
  redis.call('ZREM', P .. ':fexp', od[3])
end
redis.call('SREM', P .. ':os:' .. od[1], o)
redis.call('HSET', okey, 'state', 'cancelled', 'courier', '', 'offer', '')
if od[2] and od[2] ~= '' and od[1] ~= 'waiting' then
  local ckey = P .. ':c:' .. od[2]
  if od[1] == 'offered' and redis.call('HGET', ckey, 'offer') == od[3] then
    redis.call('HSET', ckey, 'offer', '')
  end
  redis.call('SREM', P .. ':cs:' .. od[2], o)
  settle_courier(P, gs, od[2], now)
end
redis.call('PEXPIRE', okey, CLOSED_ORDER_TTL_MS)
return {'cancelled', o, od[2] or ''}
