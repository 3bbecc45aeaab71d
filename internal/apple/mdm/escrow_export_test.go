package mdm

import "context"

// OpenEscrowed opens a Bootstrap Token (bootstrap) or an UnlockToken
// escrowed for a device, as GetBootstrapToken and ClearPasscode do.
func (s *Service) OpenEscrowed(ctx context.Context, tenantID, deviceID string, bootstrap bool, escrowed []byte) ([]byte, error) {
	t := unlockToken
	if bootstrap {
		t = bootstrapToken
	}
	return s.openEscrowed(ctx, s.st.Read(), tenantID, deviceID, t, escrowed)
}
