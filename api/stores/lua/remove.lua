-- Removes a member from the live cells only if it has not moved/updated since `ts`.
-- KEYS[1] = its position hash; ARGV: member, ts ('' for any).
local pkey = KEYS[1]
local old = redis.call('HMGET', pkey, 'ts', 'cellkey', 'seenkey')
if not old[1] then return 0 end
if ARGV[2] ~= '' and tonumber(old[1]) > tonumber(ARGV[2]) then return 0 end
if old[2] then redis.call('HDEL', old[2], ARGV[1]) end
if old[3] then redis.call('ZREM', old[3], ARGV[1]) end
redis.call('HDEL', pkey, 'cellkey', 'seenkey')
return 1
