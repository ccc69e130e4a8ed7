-- File positions, newest per member wins; returns how many changed the index.
-- ARGV[1] = position-key prefix; then groups of 8:
-- id, cell key, seen key, packed member, ts, cell, lat, lng.
local pos_prefix = ARGV[1]
local applied = 0
for i = 2, #ARGV, 8 do
  local id, cellkey, seenkey, packed, ts_s, cell =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local pkey = pos_prefix .. id
  local old = redis.call('HMGET', pkey, 'ts', 'cellkey', 'seenkey')
  local old_ts = tonumber(old[1])
  if (not old_ts) or tonumber(ts_s) > old_ts then
    redis.call('HSET', cellkey, id, packed)
    redis.call('ZADD', seenkey, ts_s, id)
    redis.call('HSET', pkey, 'lat', ARGV[i + 6], 'lng', ARGV[i + 7], 'ts', ts_s,
      'cell', cell, 'cellkey', cellkey, 'seenkey', seenkey)
    if old[2] and old[2] ~= cellkey then redis.call('HDEL', old[2], id) end
    if old[3] and old[3] ~= seenkey then redis.call('ZREM', old[3], id) end
    applied = applied + 1
  end
end
return applied
