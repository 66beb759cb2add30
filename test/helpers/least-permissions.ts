/** Jest setup of the "least-permissions" project: the key permissions docs/install.md grants. */
process.env["KVKMS_TEST_KEY_PERMISSIONS"] = "get,list,wrapKey,unwrapKey,decrypt";
