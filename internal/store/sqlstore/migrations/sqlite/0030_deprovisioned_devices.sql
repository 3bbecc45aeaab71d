-- The retention purge finds the devices retired longest ago through this
-- index, in the order it purges them, rather than by reading every device.
CREATE INDEX devices_deprovisioned ON devices(deprovisioned_at, tenant_id, id) WHERE deprovisioned_at > 0;
