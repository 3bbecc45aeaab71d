// Package device is the fleet side of device management: the searchable,
// non-personal projection of each device's inventory, groups (static and
// dynamic), configuration profiles and their deployment, the stale-device
// lifecycle, and the scope a group-limited admin works within.
//
// It follows the protocols through hooks (privacy.Gate.Changed,
// mdm.Hooks) and never reads a personal value in clear except the app
// list, which it decrypts only to evaluate rules and never stores.
package device
