-- A consent that lapses (a new consent text with its grace over, or its validity run out) no
-- longer ends the enrolment: the ambassador keeps his pseudonymous id and networks, is not
-- notified while it lasts, and renewing brings him back. lapsed_at: when the lapse was recorded
-- and told (ambassador.updated, change consent_lapsed); cleared by the renewal.
ALTER TABLE ambassadors ADD COLUMN lapsed_at timestamptz;
ALTER TABLE consents DROP CONSTRAINT consents_action_check;
ALTER TABLE consents ADD CONSTRAINT consents_action_check CHECK (action IN ('given', 'renewed', 'lapsed', 'withdrawn'));
