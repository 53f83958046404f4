-- Egress options of an ERP connection (issue 12): whether its allowed host
-- names may resolve into private networks, and the extra certificate
-- authorities (PEM) its TLS trusts.
ALTER TABLE connections ADD COLUMN allow_private_network INTEGER NOT NULL DEFAULT 0
    CHECK (allow_private_network IN (0, 1));
ALTER TABLE connections ADD COLUMN ca_certificates TEXT;
