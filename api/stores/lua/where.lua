-- Record that members entered regions, in the directory (member -> "region=ts;...").
-- KEYS[1] = the directory hash, KEYS[2] = the set of regions anything was ever filed in
-- (`LiveIndex.fresh` reads them); ARGV: groups of 3: id, region, ts of the fix filed there.
-- Returns (id, region, ts) for every other region the member is listed in: the caller takes
-- the member's copy there off if it is not newer than ts.
local out = {}
for i = 1, #ARGV, 3 do
  local id, region, ts = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local cur = redis.call('HGET', KEYS[1], id)
  local parts, found = {}, false
  if cur then
    for r, t in string.gmatch(cur, '([^=;]+)=([^;]+)') do
      if r == region then
        found = true
        if tonumber(t) > ts then ts = tonumber(t) end
        parts[#parts + 1] = r .. '=' .. ts
      else
        parts[#parts + 1] = r .. '=' .. t
        out[#out + 1] = id
        out[#out + 1] = r
        out[#out + 1] = ARGV[i + 2]
      end
    end
  end
  if not found then
    parts[#parts + 1] = region .. '=' .. ARGV[i + 2]
    redis.call('SADD', KEYS[2], region)
  end
  redis.call('HSET', KEYS[1], id, table.concat(parts, ';'))
end
return out
