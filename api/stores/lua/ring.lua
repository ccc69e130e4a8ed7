-- The members of one ring batch of cells of one region and their positions: id, position...
-- flattened. KEYS[1] = the region's position hash, KEYS[2..] = the cell hashes, all in the
-- region's slot. A cell hash lists its members; their positions ("lat,lng,ts,cell") are
-- read from the position hash, HMGET_CHUNK at a time.
local out = {}
for k = 2, #KEYS do
  local ids = redis.call('HKEYS', KEYS[k])
  for s = 1, #ids, HMGET_CHUNK do
    local chunk = {}
    for t = s, math.min(s + HMGET_CHUNK - 1, #ids) do chunk[#chunk + 1] = ids[t] end
    local got = redis.call('HMGET', KEYS[1], unpack(chunk))
    for t = 1, #chunk do
      if got[t] then
        out[#out + 1] = chunk[t]
        out[#out + 1] = got[t]
      end
    end
  end
end
return out
