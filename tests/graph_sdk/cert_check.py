#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Sign in to the Graph emulator with a certificate through azure-identity.

Usage:
    cert_check.py ROOT TENANT CLIENT_ID CERT_AND_KEY_PEM CA_PEM USER_UPN

azure-identity's CertificateCredential (MSAL underneath) builds and signs the
client assertion, as it would for Microsoft's identity platform; the token it
gets is then used for one Graph request through msgraph's GraphServiceClient.
Prints one JSON object on one line; any unexpected exception propagates.
"""

import asyncio
import json
import ssl
import sys
from importlib.metadata import version

import httpx
from azure.identity.aio import CertificateCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]


async def main(root, tenant, client_id, pem, ca_pem, upn):
    credential = CertificateCredential(
        tenant, client_id, certificate_path=pem, authority=root, connection_verify=ca_pem
    )
    token = await credential.get_token(*GRAPH_SCOPES)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=GRAPH_SCOPES)
    http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_pem))
    http = GraphClientFactory.create_with_default_middleware(client=http)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = root + "/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    folders = await client.users.by_user_id(upn).mail_folders.get()
    await http.aclose()
    await credential.close()
    print(
        json.dumps(
            {
                "token": bool(token.token),
                "folders": len(folders.value or []),
                "identity_version": version("azure-identity"),
                "msal_version": version("msal"),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
