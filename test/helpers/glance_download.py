"""Starts a glance-download import through python-glanceclient's library (run with /usr/bin/python3).

Debian's glanceclient 4.1 CLI loses the remote region and image id of glance-download
(`image-create-via-import` drops them, `image-import` reads them under the wrong attribute names), but
its library sends them: `Client.images.image_import(..., remote_region=, remote_image_id=,
remote_service_interface=)`. This logs in with a password (keystoneauth1), finds the image endpoint
of --region in the catalog and asks it to import --remote-image-id from --remote-region into IMAGE_ID.

usage: glance_download.py --auth-url URL --username U --project P --region R
                          --remote-region RR --remote-image-id RID [--remote-service-interface public]
                          IMAGE_ID
The password is read from OS_PASSWORD (not the command line).

Prints one JSON line: {"accepted": true} on success (exit 0), or
{"accepted": false, "status": <HTTP status or null>, "error": "<text>"} (exit 1).
"""

import argparse
import json
import os
import sys

from glanceclient import Client
from glanceclient import exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3


def main():
    parser = argparse.ArgumentParser(description='glance-download through the glanceclient library')
    parser.add_argument('--auth-url', required=True, help='Keystone base URL, with or without /v3')
    parser.add_argument('--username', required=True)
    parser.add_argument('--project', required=True)
    parser.add_argument('--domain', default='default', help='user and project domain id')
    parser.add_argument('--region', required=True, help='region whose Image service imports')
    parser.add_argument('--interface', default='public', help='catalog interface of that Image service')
    parser.add_argument('--remote-region', required=True)
    parser.add_argument('--remote-image-id', required=True)
    parser.add_argument('--remote-service-interface', default='public')
    parser.add_argument('image_id')
    args = parser.parse_args()

    password = os.environ.get('OS_PASSWORD')
    if not password:
        parser.error('OS_PASSWORD is not set')
    auth_url = args.auth_url.rstrip('/')
    if not auth_url.endswith('/v3'):
        auth_url += '/v3'

    auth = v3.Password(auth_url=auth_url, username=args.username, password=password,
                       user_domain_id=args.domain, project_name=args.project,
                       project_domain_id=args.domain)
    sess = ks_session.Session(auth=auth, timeout=60)
    client = Client('2', session=sess, region_name=args.region, interface=args.interface)
    try:
        client.images.image_import(args.image_id, method='glance-download',
                                   remote_region=args.remote_region,
                                   remote_image_id=args.remote_image_id,
                                   remote_service_interface=args.remote_service_interface)
    except exc.HTTPException as e:
        print(json.dumps({'accepted': False, 'status': getattr(e, 'code', None), 'error': str(e)}))
        return 1
    except Exception as e:  # keystoneauth failures (no endpoint, refused login, ...)
        print(json.dumps({'accepted': False, 'status': None, 'error': '%s: %s' % (type(e).__name__, e)}))
        return 1
    print(json.dumps({'accepted': True}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
