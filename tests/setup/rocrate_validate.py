"""Runs `rocrate-validator` where the RO-Crate JSON-LD context cannot be downloaded.

The validator's RDF parser fetches a crate's `@context` (https://w3id.org/ro/crate/1.1/context)
from the network, which the test machines cannot reach. This wrapper answers that one request
from the copy of the RO-Crate context that the `rocrate` package (ro-crate-py, from PyPI)
ships, and passes everything else through; then it runs the validator's own command line with
this script's arguments. (Requests through `requests`, which the validator also uses,
are answered the same way.) Only the transport is replaced: the validation is the real one.
"""
import io
import json
import sys
from email.message import Message
from pathlib import Path
from urllib.response import addinfourl

import rdflib._networking
import rdflib.parser
import requests
import requests.adapters
import rocrate

CONTEXT = Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld"
LOCAL = (
    "https://w3id.org/ro/crate/1.1/context",
    "https://w3id.org/ro/crate/1.2/context",
    "https://w3id.org/ro/crate/1.3/context",
)
# The packaged context is RO-Crate 1.3's, a superset of 1.1's that names four bioschemas terms
# differently; served for 1.1, those take 1.1's IRIs (as the RO-Crate 1.1 context has them).
V1_1_TERMS = {
    "ComputationalWorkflow": "https://bioschemas.org/ComputationalWorkflow",
    "FormalParameter": "https://bioschemas.org/FormalParameter",
    "input": "https://bioschemas.org/ComputationalWorkflow#input",
    "output": "https://bioschemas.org/ComputationalWorkflow#output",
}
_real = rdflib._networking._urlopen


def context_for(url):
    context = json.loads(CONTEXT.read_bytes())
    if "/1.1/" in url:
        context["@context"].update(V1_1_TERMS)
    return json.dumps(context).encode()


def _urlopen(request):
    url = request.get_full_url()
    if url.rstrip("/") in LOCAL:
        body = context_for(url)
        headers = Message()
        headers["Content-Type"] = "application/ld+json"
        return addinfourl(io.BytesIO(body), headers, url, 200)
    return _real(request)


_real_send = requests.adapters.HTTPAdapter.send


def _send(self, request, *args, **kwargs):
    if request.url.rstrip("/") in LOCAL:
        response = requests.Response()
        response.status_code = 200
        response._content = context_for(request.url)
        response.headers["Content-Type"] = "application/ld+json"
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response
    return _real_send(self, request, *args, **kwargs)


rdflib._networking._urlopen = _urlopen
rdflib.parser._urlopen = _urlopen
requests.adapters.HTTPAdapter.send = _send

from rocrate_validator.cli.main import cli  # noqa: E402

sys.exit(cli())
