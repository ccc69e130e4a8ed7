-- The members of one ring batch of cells of one region: id, packed... (the cells' HGETALLs
-- flattened). KEYS = the cell hashes, all in one region's slot.
local out = {}
for _, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  for j = 1, #flat do out[#out + 1] = flat[j] end
end
return out
