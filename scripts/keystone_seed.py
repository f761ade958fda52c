"""Seeds a bootstrapped Keystone with what Gaze's tests expect. Run by scripts/start-keystone.sh with
/usr/bin/python3 (Debian's keystoneclient). Find-or-create throughout, so running it twice is harmless.

env: OS_AUTH_URL (http://127.0.0.1:PORT/v3), OS_ADMIN_PASSWORD, GAZE_REGION_ONE_PORT, GAZE_REGION_TWO_PORT
"""
import os
import time

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

DOMAIN = 'default'  # by id: resolving "Default" by name is what crashes bookworm's CLI

auth_url = os.environ['OS_AUTH_URL']
auth = v3.Password(auth_url=auth_url, username='admin', password=os.environ['OS_ADMIN_PASSWORD'],
                   project_name='admin', user_domain_id=DOMAIN, project_domain_id=DOMAIN)
# endpoint_override: a directory restarted on another port still lists the old port in its catalog.
ks = client.Client(session=ks_session.Session(auth=auth, timeout=30), endpoint_override=auth_url)
started = time.monotonic()


def region(name):
    # list rather than get: a 404 from get is logged by Keystone as an ERROR with a traceback.
    found = [r for r in ks.regions.list() if r.id == name]
    return found[0] if found else ks.regions.create(id=name)


def project(name, description):
    found = ks.projects.list(name=name, domain=DOMAIN)
    return found[0] if found else ks.projects.create(name=name, domain=DOMAIN, description=description)


def role(name):
    found = ks.roles.list(name=name)
    return found[0] if found else ks.roles.create(name=name)


def user(name, password, default_project):
    found = ks.users.list(name=name, domain=DOMAIN)
    if found:
        # Reset the password so a reused directory always matches the documented one.
        return ks.users.update(found[0], password=password, default_project=default_project)
    return ks.users.create(name=name, password=password, domain=DOMAIN, default_project=default_project)


def service(type_, name, description):
    found = ks.services.list(type=type_)
    return found[0] if found else ks.services.create(name=name, type=type_, description=description)


def endpoints(svc, region_id, url):
    existing = {e.interface: e for e in ks.endpoints.list(service=svc, region=region_id)}
    for interface in ('public', 'internal', 'admin'):
        e = existing.get(interface)
        if e is None:
            ks.endpoints.create(service=svc, url=url, interface=interface, region=region_id)
        elif e.url != url:
            ks.endpoints.update(e, url=url)


region('RegionOne')
region('RegionTwo')

service_project = project('service', 'Service users')
demo = project('demo', 'Demo project')
alt = project('alt', 'Second tenant, for cross-project tests')

admin_role, member_role, reader_role = role('admin'), role('member'), role('reader')
# The role Nova and Cinder hold in their service tokens (X-Service-Token).
service_role = role('service')

grants = [
    (user('gaze', 'gaze-secret', service_project), admin_role, service_project),
    (user('demo', 'demo-secret', demo), member_role, demo),
    (user('alt', 'alt-secret', alt), member_role, alt),
    (user('reader', 'reader-secret', demo), reader_role, demo),
    (user('nova', 'nova-secret', service_project), service_role, service_project),
]
for u, r, p in grants:
    ks.roles.grant(r, user=u, project=p)  # a PUT: granting twice is fine

image = service('image', 'glance', 'Gaze image service')
endpoints(image, 'RegionOne', 'http://127.0.0.1:%s' % os.environ.get('GAZE_REGION_ONE_PORT', '9292'))
endpoints(image, 'RegionTwo', 'http://127.0.0.1:%s' % os.environ.get('GAZE_REGION_TWO_PORT', '9293'))

# A directory restarted on another port still has bootstrap's identity endpoints for the old one.
endpoints(service('identity', 'keystone', 'Keystone'), 'RegionOne', auth_url)

print('seeded %s in %.1f s' % (auth_url, time.monotonic() - started))
