-- File one region's fixes, newest per member wins. Every key is in the region's slot.
-- KEYS[1] = the region's last-seen set, KEYS[2] = its position hash, KEYS[2 + n] = the cell
-- hash of the n-th fix. ARGV[1] = the region's cell-key prefix (a member's previous cell key
-- is that prefix and the cell its position holds: same region, same slot; a fix's cell is
-- its cell key past the prefix). ARGV[2] = the fixes, in KEYS order, one line each:
-- "id|lat,lng,ts\n" (after the bar, the packed member).
-- A cell hash lists its members (member -> ts of the fix that filed it there); positions
-- live in the position hash only, so a fix in the member's cell writes no cell hash: most
-- fixes do not change cell, and that write was the script's largest per-fix cost.
-- Returns {applied, entrants}: how many fixes changed the index, and (id, ts) of the members
-- this region held no position for (new here: the caller records them in the directory).
local seen, pos, cell_prefix = KEYS[1], KEYS[2], ARGV[1]
local skip = #cell_prefix + 1
local applied, entrants, n = 0, {}, 2
for id, packed, ts_s in string.gmatch(ARGV[2], '([^|\n]*)|([^|\n]-,(%d+))\n') do
  n = n + 1
  local cell = string.sub(KEYS[n], skip)
  local old = redis.call('HGET', pos, id)
  local old_ts, old_cell
  if old then
    local _, _, t, c = string.match(old, '^([^,]*),([^,]*),([^,]*),(.*)$')
    old_ts, old_cell = tonumber(t), c
  end
  if (not old_ts) or tonumber(ts_s) > old_ts then
    -- A member is in its cell's hash exactly while it is in the last-seen set (`remove.lua`
    -- takes it off both): ZADD says whether it was there.
    local listed = redis.call('ZADD', seen, ts_s, id) == 0
    if old_cell ~= cell or not listed then
      redis.call('HSET', KEYS[n], id, ts_s)
      if old_cell and old_cell ~= '' and old_cell ~= cell then
        redis.call('HDEL', cell_prefix .. old_cell, id)
      end
    end
    redis.call('HSET', pos, id, packed .. ',' .. cell)
    applied = applied + 1
    if not old then
      entrants[#entrants + 1] = id
      entrants[#entrants + 1] = ts_s
    end
  end
end
return {applied, entrants}
