-- Drop regions from members' directory entries once their copies there are gone.
-- KEYS[1] = the directory hash; ARGV: groups of 3: id, region, ts. A region is dropped only
-- if the member entered it with a fix not newer than ts (a re-entry since keeps it).
local dropped = 0
for i = 1, #ARGV, 3 do
  local id, region, ts = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local cur = redis.call('HGET', KEYS[1], id)
  if cur then
    local parts = {}
    for r, t in string.gmatch(cur, '([^=;]+)=([^;]+)') do
      if r == region and tonumber(t) <= ts then
        dropped = dropped + 1
      else
        parts[#parts + 1] = r .. '=' .. t
      end
    end
    if #parts == 0 then
      redis.call('HDEL', KEYS[1], id)
    else
      redis.call('HSET', KEYS[1], id, table.concat(parts, ';'))
    end
  end
end
return dropped
