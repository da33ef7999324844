#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Drive the Graph emulator's mailbox import/export API with Microsoft's SDK.

Usage:
    export_check.py ROOT TENANT CLIENT_ID SECRET_FILE CA_PEM USER_UPN

Through msgraph's GraphServiceClient: the user's mailbox id from
settings/exchange, every folder under the root (following @odata.nextLink),
the Inbox's items, one items delta round page by page to its delta link,
exportItems of the Inbox's items, and createImportSession; then one item
imported into the Archive by a POST to the session's URL without an
Authorization header (the SDK has no builder for that URL: httpx, as the
documentation's own example does). Prints one JSON object on one line.
"""

import asyncio
import base64
import json
import ssl
import sys

import httpx
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.admin.exchange.mailboxes.item.export_items.export_items_post_request_body import (
    ExportItemsPostRequestBody,
)
from msgraph_core import GraphClientFactory

GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]


async def main(root, tenant, client_id, secret_file, ca_pem, upn):
    with open(secret_file, encoding="utf-8") as f:
        secret = f.read().strip()
    credential = ClientSecretCredential(
        tenant, client_id, secret, authority=root, connection_verify=ca_pem
    )
    ssl_ctx = ssl.create_default_context(cafile=ca_pem)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl_ctx)
    )
    adapter = GraphRequestAdapter(
        AzureIdentityAuthenticationProvider(credential, scopes=GRAPH_SCOPES), client=http
    )
    adapter.base_url = root + "/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    out = {}

    settings = await client.users.by_user_id(upn).settings.exchange.get()
    mailbox_id = settings.primary_mailbox_id
    out["mailbox_id"] = mailbox_id.startswith("MBX:")
    mailbox = client.admin.exchange.mailboxes.by_mailbox_id(mailbox_id)

    folders, pages = [], 0
    page = await mailbox.folders.get()
    while page is not None:
        pages += 1
        folders.extend(page.value or [])
        if not page.odata_next_link:
            break
        page = await mailbox.folders.with_url(page.odata_next_link).get()
    out["folder_pages"] = pages
    out["folder_types"] = sorted({f.type for f in folders})
    by_name = {f.well_known_name: f for f in folders if f.well_known_name}
    inbox, archive = by_name["inbox"], by_name["archive"]

    items = await mailbox.folders.by_mailbox_folder_id(inbox.id).items.get()
    out["inbox_items"] = len(items.value or [])
    out["item_types"] = sorted({i.type for i in items.value or []})

    config = RequestConfiguration()
    config.headers.add("Prefer", "odata.maxpagesize=2")
    delta = mailbox.folders.by_mailbox_folder_id(inbox.id).items.delta
    page = await delta.get(request_configuration=config)
    seen, delta_pages = 0, 0
    while True:
        delta_pages += 1
        seen += len(page.value or [])
        if page.odata_next_link:
            page = await delta.with_url(page.odata_next_link).get(request_configuration=config)
            continue
        out["delta_link"] = bool(page.odata_delta_link)
        break
    out["delta_items"], out["delta_pages"] = seen, delta_pages

    ids = [i.id for i in items.value or []]
    body = ExportItemsPostRequestBody(item_ids=ids)
    exported = await mailbox.export_items.post(body)
    streams = [e for e in exported.value or [] if e.data]
    out["exported"] = len(streams)

    session = await mailbox.create_import_session.post()
    out["session_expires"] = session.expiration_date_time is not None
    async with httpx.AsyncClient(verify=ssl_ctx) as plain:
        answer = await plain.post(
            session.import_url,
            json={
                "FolderId": archive.id,
                "Mode": "create",
                "Data": base64.b64encode(streams[0].data).decode("ascii"),
            },
        )
        answer.raise_for_status()
        out["imported"] = bool(answer.json().get("itemId"))
    await http.aclose()
    await credential.close()
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
