-- The open channels of one device, by the keyed index of the UDID it names:
-- a device that enrols again without a CheckOut finds its earlier record here.
CREATE INDEX apple_channels_device_index ON apple_channels(tenant_id, channel_index) WHERE checked_out = 0;
