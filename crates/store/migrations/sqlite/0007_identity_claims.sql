-- Verified and unverified identifiers.
--
-- Anyone can read a publishable key out of a web page, so what the snippet
-- and publishable Segment write keys claim about who a visitor is (an
-- identify with someone's e-mail) is unverified; what the owner's backend
-- claims (admin or secret key, postback, server conversions) is verified.
-- A person with a verified identifier is protected: unverified claims never
-- merge it (tribute_core::identity::stitch has the rule).
--
-- verified: 1 when a trusted source claimed the key, 0 otherwise. New keys
-- default to unverified, the safe side, should a writer ever leave it out.
--
-- Every key stored before this migration predates the distinction: it came
-- from any way in, the snippet and publishable Segment keys included, and
-- which one is not recorded. They become verified, so that every person
-- known before the upgrade is protected at once. Marking them unverified
-- instead would leave every existing customer open to the merge described
-- above until the owner's backend names them again. The cost is only that
-- browser claims reaching such a person through an e-mail, user id or phone
-- (not through its own anonymous id) no longer stitch, as for any verified
-- person.
ALTER TABLE identities ADD COLUMN verified BIGINT NOT NULL DEFAULT 0
    CHECK (verified IN (0, 1));
UPDATE identities SET verified = 1;
