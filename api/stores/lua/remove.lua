-- Take members off one region's grid if their fix there is not newer than a given ts.
-- KEYS[1] = the region's last-seen set, KEYS[2] = its position hash; ARGV[1] = the region's
-- cell-key prefix, ARGV[2] = '1' to forget the position too (the member moved to another
-- region) or '0' to keep it (gone offline: its last position stays readable), ARGV[3] = '1'
-- when only a strictly older copy goes (a move: of two fixes with one ts the first filed
-- stays); then pairs: id, ts ('' for any). Returns, per pair, 1 when the member's copy here
-- was taken off and 0 otherwise (newer, or no position here).
local out = {}
local strict = ARGV[3] == '1'
for i = 4, #ARGV, 2 do
  local id, guard = ARGV[i], ARGV[i + 1]
  local old = redis.call('HGET', KEYS[2], id)
  local done = 0
  if old then
    local _, _, t, c = string.match(old, '^([^,]*),([^,]*),([^,]*),(.*)$')
    local g = tonumber(guard)
    if guard == '' or tonumber(t) < g or (not strict and tonumber(t) == g) then
      if c ~= '' then redis.call('HDEL', ARGV[1] .. c, id) end
      redis.call('ZREM', KEYS[1], id)
      if ARGV[2] == '1' then redis.call('HDEL', KEYS[2], id) end
      done = 1
    end
  end
  out[#out + 1] = done
end
return out
