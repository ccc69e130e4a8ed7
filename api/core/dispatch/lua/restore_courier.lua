-- Rebuild: a courier's recorded availability (PostgreSQL, api/core/dispatch/records.py) back
-- in the dispatch state. Its vehicle is put back in any case; its state (idle when it was
-- online, else offline) only if the state does not know it yet (a courier holding an order
-- was settled by restore_holding; one that called availability since is newer). 1 if its
-- state was set. ARGV: P, geo_status, courier, online (1/0), vehicle, now
local P, gs, c, online, vehicle, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ckey = P .. ':c:' .. c
local known = redis.call('EXISTS', ckey) == 1
if vehicle ~= '' and not redis.call('HGET', P .. ':veh', c) then
  redis.call('HSET', ckey, 'vehicle', vehicle)
  redis.call('HSET', P .. ':veh', c, vehicle)
end
if known then return 0 end
set_courier(P, gs, c, online == '1' and 'idle' or 'offline', now)
redis.call('HSET', ckey, 'offer', '', 'order', '')
return 1
