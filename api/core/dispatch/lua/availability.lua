-- A courier goes online (idle, unless it already is something else) or offline (only from
-- MAY_GO_OFFLINE: else busy, with its state); a vehicle given is kept in the courier hash
-- and in P:veh. ARGV: P, geo_status, courier, online (1/0), vehicle, now
local P, gs, c, online, vehicle, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ckey = P .. ':c:' .. c
local st = redis.call('HGET', ckey, 'state') or 'offline'
if online == '1' then
  if st == 'offline' then set_courier(P, gs, c, 'idle', now) end
  if vehicle ~= '' then
    redis.call('HSET', ckey, 'vehicle', vehicle)
    redis.call('HSET', P .. ':veh', c, vehicle)
  end
  return {'online', redis.call('HGET', ckey, 'state')}
end
if not MAY_GO_OFFLINE[st] then return {'busy', st} end
set_courier(P, gs, c, 'offline', now)
return {'offline'}
