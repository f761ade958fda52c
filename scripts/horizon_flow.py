"""Drives a running Horizon (the Images panel) in headless Chromium with Selenium, as a person would.

Starts nothing but the browser: Horizon, Keystone and the Image service must be running. Run with the
system python (Debian's selenium): /usr/bin/python3 scripts/horizon_flow.py --url http://127.0.0.1:PORT
--screenshots DIR [...]. Passwords may also come from HORIZON_MEMBER_PASSWORD / HORIZON_ADMIN_PASSWORD.

As the member (a user with the member role in a project): log in; the Images panel lists images (and
--expect-image when given); create an image by uploading a small raw file and wait until it is Active;
open its details page; edit its name, description, min_ram and a custom property; change its
visibility to private, community and back to shared.
As the admin: "Update Metadata" with a property of a namespace from the metadefs (Horizon shows that
action only to users allowed modify_metadef_object, which its default policy gives to admins only), and
make the image public (publicize_image: admins only).
As the member again: delete the image.

A step fails on any visible error (an `.alert-danger`: error toasts, the wizard's error line) or on a
timeout; later steps are then skipped. One screenshot per step goes to the screenshots dir. A JSON
summary is printed on stdout; the exit code is 0 only when every step passed.
"""
import argparse
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import (ElementClickInterceptedException, StaleElementReferenceException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

IMAGE_TYPE = 'OS::Glance::Image'
# Console errors Debian's Horizon logs whatever the Image service answers: an old angular-gettext calling
# angular.lowercase and Cinder missing from the catalog (every page), and the policy checks that say no
# (a member is not allowed publicize_image) left as unhandled rejections.
HARMLESS_CONSOLE = ('angular.lowercase is not a function', 'Service type is not enabled: volumev3',
                    'Possibly unhandled rejection: undefined')


class StepFailed(Exception):
    pass


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--url', required=True, help='Horizon base URL, e.g. http://127.0.0.1:8080')
    p.add_argument('--screenshots', required=True, help='directory for one PNG per step')
    p.add_argument('--member-user', default='demo')
    p.add_argument('--member-password', default=os.environ.get('HORIZON_MEMBER_PASSWORD', 'demo-secret'))
    p.add_argument('--admin-user', default='admin')
    p.add_argument('--admin-password', default=os.environ.get('HORIZON_ADMIN_PASSWORD', 'admin-secret'))
    p.add_argument('--name', default='', help='name of the image to create (default: a random one)')
    p.add_argument('--expect-image', default='', help='an image the member must see listed')
    p.add_argument('--namespace', default='Watchdog Behavior',
                   help='display name of the metadefs namespace used by Update Metadata')
    p.add_argument('--namespace-property', default='hw_watchdog_action',
                   help='a property of --namespace (an enum: the first value is kept)')
    p.add_argument('--image-size', type=int, default=384 * 1024)
    p.add_argument('--timeout', type=float, default=60, help='seconds any single wait may take')
    p.add_argument('--chromedriver', default='/usr/bin/chromedriver')
    return p.parse_args()


class Flow:
    def __init__(self, args, workdir):
        self.args = args
        self.base = args.url.rstrip('/')
        self.shots = args.screenshots
        self.workdir = workdir
        self.results = []
        self.failures = []
        self.info = {}
        self.console = []
        os.makedirs(self.shots, exist_ok=True)
        options = webdriver.ChromeOptions()
        for flag in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1400,1000',
                     '--disable-background-networking', '--disable-component-update', '--disable-sync',
                     '--no-first-run', f'--user-data-dir={os.path.join(workdir, "profile")}'):
            options.add_argument(flag)
        # The browser console shows failed requests (a blocked CORS preflight in direct upload mode).
        options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        # Selenium Manager must not go looking for a driver on the network: the Debian one is given.
        self.driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
        self.driver.set_page_load_timeout(args.timeout)

    # ---- helpers -------------------------------------------------------------------------------------

    def screenshot(self, name):
        n = len(self.results) + 1
        path = os.path.join(self.shots, f'{n:02d}-{name}.png')
        try:
            self.driver.save_screenshot(path)
        except WebDriverException:
            pass
        return path

    def visible_errors(self):
        """Texts of the error alerts a user would see (hidden ng-show alerts do not count)."""
        texts = []
        for el in self.driver.find_elements(By.CSS_SELECTOR, '.alert-danger, .alert-error'):
            try:
                if el.is_displayed():
                    texts.append(' '.join(el.text.split()) or '(an empty error alert)')
            except StaleElementReferenceException:
                pass
        return texts

    def check_errors(self):
        errors = self.visible_errors()
        if errors:
            raise StepFailed('error shown: ' + ' | '.join(errors))

    def wait(self, what, cond, timeout=None):
        """Polls cond() until it returns something truthy; fails early on a visible error."""
        deadline = time.monotonic() + (timeout or self.args.timeout)
        last = None
        while True:
            self.check_errors()
            try:
                value = cond()
                if value:
                    return value
            except (StaleElementReferenceException, WebDriverException) as err:
                last = err
            if time.monotonic() > deadline:
                raise StepFailed(f'timed out waiting for {what}' + (f' ({last.__class__.__name__})' if last else ''))
            time.sleep(0.25)

    def angular_idle(self):
        """True once AngularJS has no HTTP request in flight (the panels load everything through $http)."""
        return self.driver.execute_script(
            "if (!window.angular) return true;"
            "var inj = angular.element(document.body).injector();"
            "if (!inj) return false;"
            "return inj.get('$http').pendingRequests.length === 0;")

    def visible(self, xpath, root=None):
        found = [e for e in (root or self.driver).find_elements(By.XPATH, xpath) if e.is_displayed()]
        return found[0] if found else None

    def wait_visible(self, what, xpath, timeout=None):
        return self.wait(what, lambda: self.visible(xpath), timeout)

    def click(self, el):
        self.driver.execute_script('arguments[0].scrollIntoView({block: "center"});', el)
        try:
            el.click()
        except ElementClickInterceptedException:
            # A fading toast or backdrop may sit on top of it for a moment.
            self.driver.execute_script('arguments[0].click();', el)

    def type_into(self, el, text):
        el.clear()
        el.send_keys(text)

    def modal(self):
        return self.visible("//div[contains(@class,'modal-dialog')]")

    def wait_modal(self, title):
        xpath = (f"//div[contains(@class,'modal-dialog')][.//*[contains(@class,'modal-title')]"
                 f"[normalize-space()={xpath_literal(title)}]]")
        dialog = self.wait_visible(f'the "{title}" dialog', xpath)
        self.wait(f'the "{title}" dialog to load', self.angular_idle)
        return dialog

    def wait_modal_closed(self, what, timeout=None):
        self.wait(f'{what} to close', lambda: self.modal() is None, timeout)

    def wait_toast(self, pattern):
        """A success toast matching pattern (toasts vanish after a few seconds, so poll often)."""
        rx = re.compile(pattern)

        def seen():
            for el in self.driver.find_elements(By.CSS_SELECTOR, 'toast .alert-success'):
                try:
                    if rx.search(el.text):
                        return el.text
                except StaleElementReferenceException:
                    pass
            return None
        return self.wait(f'a success toast /{pattern}/', seen)

    def dismiss_toasts(self):
        for el in self.driver.find_elements(By.CSS_SELECTOR, 'toast .alert .close'):
            try:
                if el.is_displayed():
                    self.driver.execute_script('arguments[0].click();', el)
            except StaleElementReferenceException:
                pass

    def get(self, path):
        self.driver.get(self.base + path)

    # ---- pages ---------------------------------------------------------------------------------------

    def login(self, user, password):
        self.get('/auth/logout/')
        self.get('/auth/login/?next=/project/images/')
        self.type_into(self.wait_visible('the login form', "//input[@id='id_username']"), user)
        self.type_into(self.driver.find_element(By.ID, 'id_password'), password)
        self.click(self.driver.find_element(By.ID, 'loginBtn'))
        self.wait('the Images panel after login', lambda: '/auth/login' not in self.driver.current_url
                  and self.driver.find_elements(By.CSS_SELECTOR, 'hz-resource-table'))
        self.wait_images_table()
        who = self.driver.find_element(By.CSS_SELECTOR, '#profile_editor_switcher, .user-menu, #user_info')
        self.info[f'logged_in_{user}'] = ' '.join(who.text.split())

    def wait_images_table(self):
        # The table is filled by AngularJS after the page: wait for its rows or its "no items" line.
        self.wait('the images table', lambda: self.driver.find_elements(By.CSS_SELECTOR, 'hz-resource-table table tbody tr'))
        self.wait('the images table to load', self.angular_idle)

    def open_images(self, admin=False):
        self.get('/admin/images/' if admin else '/project/images/')
        self.wait_images_table()

    def row(self, name):
        return self.visible(f"//hz-resource-table//tbody/tr[.//a[normalize-space()={xpath_literal(name)}]]")

    def row_status(self, name):
        row = self.row(name)
        if row is None:
            return None
        cells = [c.text.strip() for c in row.find_elements(By.TAG_NAME, 'td')]
        return cells

    def row_action(self, name, action):
        """Clicks a row action: the primary button, or an entry of the row's dropdown."""
        row = self.wait(f'the row of {name}', lambda: self.row(name))
        label = xpath_literal(action)
        button = self.visible(f".//actions//button[normalize-space()={label}]", row)
        if button is None:
            toggle = self.visible(".//actions//*[contains(@class,'dropdown-toggle')]", row)
            if toggle is None:
                raise StepFailed(f'no actions menu in the row of {name}')
            self.click(toggle)
            button = self.wait_visible(f'"{action}" in the actions menu of {name}',
                                       f"//ul[contains(@class,'dropdown-menu')]//*[self::a or self::button]"
                                       f"[normalize-space()={label}]")
        self.click(button)

    def open_details(self, image_id):
        self.get(f'/ngdetails/{IMAGE_TYPE}/{image_id}')
        # The property lists render after the image and its resource type have loaded.
        self.wait('the details page', lambda: self.details().get('ID') == image_id and self.details().get('Visibility'))
        self.wait('the details page to load', self.angular_idle)

    def details(self):
        """The details page's <dt>/<dd> pairs as text; custom properties also under their names."""
        return self.driver.execute_script("""
            var pairs = {};
            document.querySelectorAll('dl dt').forEach(function (dt) {
              var dd = dt.nextElementSibling;
              if (!dd || dd.tagName !== 'DD') return;
              var value = dd.innerText.trim();
              pairs[dt.innerText.trim()] = value;
              if (dt.title) pairs[dt.title] = value;
            });
            return pairs;""")

    def edit_image(self, name, change, admin=False):
        """Opens "Edit Image" from the images table, lets change(dialog) fill it and submits."""
        self.open_images(admin)
        self.row_action(name, 'Edit Image')
        dialog = self.wait_modal('Edit Image')
        # The form is filled from GET /api/glance/images/<id>/ once that answers.
        self.wait('the edit form to be filled',
                  lambda: dialog.find_element(By.ID, 'imageForm-name').get_attribute('value') == name)
        change(dialog)
        self.click(dialog.find_element(By.CSS_SELECTOR, 'button.finish'))
        self.wait_toast('was successfully updated')
        self.wait_modal_closed('the Edit Image dialog')

    def pick_visibility(self, dialog, label):
        option = self.visible(f".//label[contains(@class,'btn')][@ng-model='ctrl.image.visibility']"
                              f"[normalize-space()={xpath_literal(label)}]", dialog)
        if option is None:
            offered = [e.text for e in dialog.find_elements(By.XPATH, ".//label[@ng-model='ctrl.image.visibility']")]
            raise StepFailed(f'visibility "{label}" is not offered (offered: {offered})')
        self.click(option)

    # ---- steps ---------------------------------------------------------------------------------------

    def run(self):
        a = self.args
        name = a.name or f'gaze-e2e-{secrets.token_hex(3)}'
        renamed = name + '-edited'
        data = os.path.join(self.workdir, f'{name}.raw')
        with open(data, 'wb') as f:
            f.write(os.urandom(a.image_size))
        state = {'name': name}

        def login_member():
            self.login(a.member_user, a.member_password)

        def list_images():
            self.open_images()
            if a.expect_image:
                self.wait(f'{a.expect_image} in the list', lambda: self.row(a.expect_image))
            rows = self.driver.find_elements(By.XPATH, '//hz-resource-table//tbody/tr[.//a]')
            self.info['listed_images'] = [r.find_element(By.XPATH, './/a').text for r in rows if r.is_displayed()]

        def create_image():
            self.open_images()
            self.click(self.wait_visible('the Create Image button',
                                         "//actions//button[normalize-space()='Create Image']"))
            dialog = self.wait_modal('Create Image')
            self.type_into(dialog.find_element(By.ID, 'imageForm-name'), name)
            self.type_into(dialog.find_element(By.ID, 'imageForm-description'), 'uploaded by horizon_flow.py')
            # ng-file-upload puts a hidden <input type=file> next to the Browse button; chromedriver
            # can give it a path without it being shown.
            file_input = self.wait('the file input', lambda: self.driver.find_elements(
                By.CSS_SELECTOR, 'input[type=file]'))[-1]
            file_input.send_keys(data)
            self.wait('the file name to show', lambda: dialog.find_element(
                By.CSS_SELECTOR, 'input[ng-model="image_file.name"]').get_attribute('value').endswith('.raw'))
            Select(dialog.find_element(By.ID, 'imageForm-format')).select_by_visible_text('Raw')
            self.screenshot('create-form')
            self.click(dialog.find_element(By.CSS_SELECTOR, 'button.finish'))
            self.wait_modal_closed('the Create Image dialog', timeout=2 * a.timeout)
            # The row first shows Queued/Saving; the table does not refresh itself.
            deadline = time.monotonic() + 2 * a.timeout
            while True:
                self.open_images()
                cells = self.row_status(name)
                if cells and 'Active' in cells:
                    break
                if time.monotonic() > deadline:
                    raise StepFailed(f'{name} did not become Active (row: {cells})')
                time.sleep(1)
            self.info['created_row'] = cells

        def details():
            self.open_images()
            link = self.wait(f'the link of {name}', lambda: self.visible(
                f"//hz-resource-table//tbody//a[normalize-space()={xpath_literal(name)}]"))
            self.click(link)
            self.wait('the details URL', lambda: f'/ngdetails/{IMAGE_TYPE}/' in self.driver.current_url)
            image_id = self.driver.current_url.rstrip('/').split('/')[-1]
            state['id'] = image_id
            self.info['image_id'] = image_id
            self.open_details(image_id)
            d = self.details()
            expect(d.get('Name') == name, f'details Name {d.get("Name")!r}')
            expect(d.get('Status') == 'Active', f'details Status {d.get("Status")!r}')
            expect(d.get('ID') == image_id, f'details ID {d.get("ID")!r}')
            expect(re.search(r'\d', d.get('Size', '')), f'details Size {d.get("Size")!r}')
            expect(d.get('Checksum', '-') not in ('', '-'), f'details Checksum {d.get("Checksum")!r}')
            self.info['details'] = d

        def edit():
            def change(dialog):
                self.type_into(dialog.find_element(By.ID, 'imageForm-name'), renamed)
                self.type_into(dialog.find_element(By.ID, 'imageForm-description'), 'edited by horizon_flow.py')
                self.type_into(dialog.find_element(By.ID, 'imageForm-min_ram'), '512')
                # The Metadata step: a custom property, added by name, then given a value.
                self.click(dialog.find_element(By.XPATH, ".//li[contains(@class,'nav-item')][normalize-space()='Metadata']//a"))
                custom = self.wait_visible('the custom property input', "//input[@name='customItem']")
                self.wait('the metadata tree', self.angular_idle)
                custom.send_keys('gaze_e2e_prop')
                self.click(custom.find_element(By.XPATH, "./following-sibling::span//button"))
                value = self.wait_visible('the custom property value', "//metadata-tree-item[.//span[normalize-space()="
                                          "'gaze_e2e_prop']]//input[@name='property']")
                value.send_keys('gaze-e2e-value')
                self.screenshot('edit-metadata-step')
            self.edit_image(name, change)
            state['name'] = renamed
            self.open_details(state['id'])
            d = self.details()
            expect(d.get('Name') == renamed, f'details Name {d.get("Name")!r}')
            expect(d.get('Min. RAM') == '512' or '512' in d.get('Min RAM', '') or '512' in json.dumps(d),
                   f'min_ram 512 not shown: {d}')
            expect(d.get('gaze_e2e_prop') == 'gaze-e2e-value', f'custom property not shown: {d}')
            expect(d.get('description') == 'edited by horizon_flow.py' or 'edited by horizon_flow.py' in d.values(),
                   f'description not shown: {d}')
            self.info['edited_details'] = d

        def visibility(label):
            def step():
                self.edit_image(state['name'], lambda dialog: self.pick_visibility(dialog, label))
                self.open_details(state['id'])
                shown = self.details().get('Visibility')
                expect(shown == label, f'details Visibility {shown!r}, expected {label!r}')
            return step

        def login_admin():
            self.login(a.admin_user, a.admin_password)

        def update_metadata():
            self.open_images(admin=True)
            self.row_action(state['name'], 'Update Metadata')
            dialog = self.wait_modal('Update Image Metadata')
            namespace = self.wait_visible(f'the namespace {a.namespace}',
                                          f"//li[contains(@class,'list-group-item')][.//span[normalize-space()="
                                          f"{xpath_literal(a.namespace)}]]")
            self.click(namespace)  # expands it
            self.wait_visible(f'the properties of {a.namespace}',
                              "//li[contains(@class,'list-group-item')][contains(@class,'level-1')]")
            # The tree shows labels; the property's name appears in the well once it is selected.
            found = None
            for item in self.driver.find_elements(By.XPATH, "//li[contains(@class,'list-group-item')][contains(@class,'level-1')]"):
                if not item.is_displayed():
                    continue
                self.click(item)
                well = self.driver.find_element(By.CSS_SELECTOR, '.metadata-tree .well').text
                if f'({a.namespace_property})' in well:
                    found = item
                    break
            if found is None:
                raise StepFailed(f'{a.namespace_property} not found under {a.namespace}')
            self.click(found.find_element(By.XPATH, ".//a[contains(@class,'btn')]"))
            item = self.wait_visible('the added property', f"//metadata-tree-item[.//span[normalize-space()="
                                     f"{xpath_literal(a.namespace_property)}]]")
            select = item.find_elements(By.TAG_NAME, 'select')
            if select:
                choice = Select(select[0])
                if not choice.first_selected_option.text.strip():
                    choice.select_by_index(1)
                state['ns_value'] = choice.first_selected_option.text.strip()
            else:
                field = item.find_element(By.XPATH, ".//input[@name='property']")
                field.send_keys('1')
                state['ns_value'] = '1'
            self.screenshot('update-metadata-form')
            self.click(dialog.find_element(By.XPATH, ".//button[contains(@class,'btn-primary')][normalize-space()='Save']"))
            self.wait_toast('Metadata was successfully updated|successfully updated')
            self.wait_modal_closed('the Update Metadata dialog')
            self.open_details(state['id'])
            d = self.details()
            expect(d.get(a.namespace_property) == state['ns_value'] or state['ns_value'] in d.values(),
                   f'{a.namespace_property}={state["ns_value"]} not shown: {d}')

        def make_public():
            self.edit_image(state['name'], lambda dialog: self.pick_visibility(dialog, 'Public'), admin=True)
            self.open_details(state['id'])
            shown = self.details().get('Visibility')
            expect(shown == 'Public', f'details Visibility {shown!r}')

        def delete():
            self.open_images()
            self.row_action(state['name'], 'Delete Image')
            dialog = self.wait_modal('Confirm Delete Image')
            self.click(dialog.find_element(By.XPATH, ".//button[normalize-space()='Delete Image']"))
            self.wait_toast('Deleted Image')
            self.wait_modal_closed('the delete confirmation')
            self.open_images()
            expect(self.row(state['name']) is None, f'{state["name"]} is still listed')

        steps = [
            ('login-member', login_member),
            ('list-images', list_images),
            ('create-image', create_image),
            ('details', details),
            ('edit', edit),
            ('visibility-private', visibility('Private')),
            ('visibility-community', visibility('Community')),
            ('visibility-shared', visibility('Shared')),
            ('login-admin', login_admin),
            ('update-metadata', update_metadata),
            ('make-public', make_public),
            ('login-member-again', login_member),
            ('delete-image', delete),
        ]
        failed = False
        for step_name, fn in steps:
            if failed:
                self.results.append({'step': step_name, 'status': 'skipped'})
                continue
            started = time.monotonic()
            try:
                fn()
                self.check_errors()
                status, error = 'passed', None
            except Exception as err:  # any failure ends the flow: the later steps need this one
                status = 'failed'
                error = f'{err.__class__.__name__}: {err}' if not isinstance(err, StepFailed) else str(err)
                if not isinstance(err, StepFailed):
                    error += '\n' + traceback.format_exc(limit=3)
                failed = True
            shot = self.screenshot(step_name)
            entry = {'step': step_name, 'status': status, 'seconds': round(time.monotonic() - started, 1),
                     'screenshot': shot, 'url': self.driver.current_url}
            if error:
                entry['error'] = error
                self.failures.append({'step': step_name, 'error': error, 'url': self.driver.current_url})
            self.results.append(entry)
            self.dismiss_toasts()
        self.collect_console()

    def collect_console(self):
        """SEVERE browser console lines, first line each, without the noise every page makes here."""
        try:
            for entry in self.driver.get_log('browser'):
                message = entry.get('message', '')
                if entry.get('level') != 'SEVERE' or any(n in message for n in HARMLESS_CONSOLE):
                    continue
                # A failed XHR's config carries the user's token: not worth printing.
                first = re.sub(r'(X-Auth-Token\W+)[\w-]+', r'\1***', message.split('\n')[0])
                if first not in self.console:
                    self.console.append(first)
        except WebDriverException:
            pass

    def summary(self):
        return {
            'passed': [r['step'] for r in self.results if r['status'] == 'passed'],
            'failed': [r['step'] for r in self.results if r['status'] == 'failed'],
            'skipped': [r['step'] for r in self.results if r['status'] == 'skipped'],
            'failures': self.failures,
            'steps': self.results,
            'info': self.info,
            'browser_errors': self.console,
            'ok': bool(self.results) and all(r['status'] == 'passed' for r in self.results),
        }


def expect(cond, message):
    if not cond:
        raise StepFailed(message)


def xpath_literal(s):
    if "'" not in s:
        return f"'{s}'"
    if '"' not in s:
        return f'"{s}"'
    return "concat('" + "', \"'\", '".join(s.split("'")) + "')"


def main():
    args = parse_args()
    workdir = tempfile.mkdtemp(prefix='horizon-flow-')
    flow = None
    try:
        flow = Flow(args, workdir)
        flow.run()
        summary = flow.summary()
    except Exception as err:  # the browser could not even start
        summary = {'ok': False, 'passed': [], 'failed': ['browser'], 'skipped': [],
                   'failures': [{'step': 'browser', 'error': f'{err.__class__.__name__}: {err}'}]}
    finally:
        if flow is not None:
            try:
                flow.driver.quit()
            except WebDriverException:
                pass
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary, indent=2))
    return 0 if summary['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
