package mdm

import (
	"context"
	"errors"
	"fmt"

	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// EnrolmentLinkKind is the notification that carries a mailed enrolment
// link. Its key is minted as the mail leaves (mintEnrolmentLink), so the
// link exists only in the person's mailbox: the admin who made it never
// holds it and cannot answer the enrolment page in the person's place.
const EnrolmentLinkKind = "enrolment_link"

// queueEnrolmentMail puts e's invitation in the outbox, in q's transaction.
func (s *Service) queueEnrolmentMail(ctx context.Context, q store.Queries, e store.Enrolment) error {
	body := "Your organisation invites you to enrol a device in its device management.\n\n" +
		"Open this link on the device you are enrolling. Before anything is installed, it shows in plain words " +
		"what will and will not be collected and what your organisation can and cannot do, and asks you to accept. " +
		fmt.Sprintf("It enrols one device and is valid until %s:\n\n", e.ExpiresAt.UTC().Format("2 January 2006, 15:04 MST")) +
		privacy.KeyPlaceholder + "\n\nIf you did not expect this, ignore it and tell your IT team.\n"
	return s.priv.QueueKeyMail(ctx, q, store.Notification{TenantID: e.TenantID, SubjectID: e.SubjectID, Kind: EnrolmentLinkKind,
		Ref: e.ID, Title: "Enrol your device", Body: body})
}

// mintEnrolmentLink is the outbox's KeyMinter for EnrolmentLinkKind: it
// gives the enrolment a new secret and returns its link. A link nobody may
// use any more (revoked, expired, accepted, its person gone) is not sent.
// Each attempt's link replaces the one before, which no mail carried.
func (s *Service) mintEnrolmentLink(ctx context.Context, q store.Queries, n store.Notification) (string, error) {
	e, err := q.Enrolments().Get(ctx, n.TenantID, n.Ref)
	if errors.Is(err, store.ErrNotFound) {
		return "", privacy.ErrLinkClosed
	}
	if err != nil {
		return "", err
	}
	if !e.LinkMailed || e.SubjectID != n.SubjectID || e.State != store.EnrolmentOpen || !s.clock().Before(e.ExpiresAt) {
		return "", privacy.ErrLinkClosed
	}
	secret, hash, err := credential.New(credential.EnrolmentLink)
	if err != nil {
		return "", err
	}
	if err := q.Enrolments().SetSecretHash(ctx, e.TenantID, e.ID, hash); errors.Is(err, store.ErrConflict) {
		return "", privacy.ErrLinkClosed
	} else if err != nil {
		return "", err
	}
	return s.enrolmentURL(secret), nil
}

func (s *Service) enrolmentURL(secret string) string { return s.cfg.PublicURL + "/enrol/" + secret }

// mayAskFullWipe: only a personal device's person answers for a full wipe,
// and only through a link that reached them alone. Whoever held a link an
// admin was shown could have accepted in their place.
func mayAskFullWipe(e store.Enrolment) bool {
	return privacy.Ownership(e.Ownership) == privacy.Personal && e.LinkMailed
}
