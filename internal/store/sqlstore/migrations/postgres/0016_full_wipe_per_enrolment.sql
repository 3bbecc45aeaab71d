-- An enrolment's allow_full_wipe is now the employee's answer for that
-- device alone; it used to count only while their newest consent for the
-- class agreed. Where that consent took the permission back, take it back
-- on the enrolment, so that a later "yes" for another device does not
-- bring it back for this one.
UPDATE enrolments SET allow_full_wipe = 0
WHERE allow_full_wipe = 1 AND subject_id <> ''
  AND (SELECT c.allow_full_wipe FROM consents c
       WHERE c.tenant_id = enrolments.tenant_id AND c.subject_id = enrolments.subject_id
         AND c.ownership = enrolments.ownership AND c.withdrawn_at = 0
       ORDER BY c.accepted_at DESC, c.id DESC LIMIT 1) = 0;
