{#- nuncio on a host: binary, start script, unit, tiny bootstrap; reloaded (hot restart) on any change. -#}
{%- set nuncio = salt['pillar.get']('nuncio', {}) %}
{%- set binary = '/usr/local/bin/nuncio' %}

nuncio-group:
  group.present:
    - name: nuncio
    - system: True

nuncio-user:
  user.present:
    - name: nuncio
    - system: True
    - gid: nuncio
    - home: /nonexistent
    - createhome: False
    - shell: /usr/sbin/nologin
    - require:
      - group: nuncio-group

nuncio-binary:
  file.managed:
    - name: {{ binary }}
    - source: {{ nuncio.get('binary_source', 'salt://nuncio/files/nuncio') }}
{%- if nuncio.get('binary_hash') %}
    - source_hash: {{ nuncio.get('binary_hash') }}
{%- endif %}
    - mode: '0755'
    - user: root
    - group: root

nuncio-start-script:
  file.managed:
    - name: /usr/local/lib/nuncio/start-nuncio.sh
    - source: salt://systemd/start-nuncio.sh
    - makedirs: True
    - mode: '0755'

nuncio-config-dir:
  file.directory:
    - name: /etc/nuncio
    - user: root
    - group: nuncio
    - mode: '0750'
    - require:
      - group: nuncio-group

nuncio-bootstrap:
  file.managed:
    - name: /etc/nuncio/bootstrap.yaml
    - source: salt://nuncio/files/bootstrap.yaml.j2
    - template: jinja
    - user: root
    - group: nuncio
    - mode: '0640'
    # salt appends the new file's temporary path: a bootstrap that does not validate is never written
    - check_cmd: {{ binary }} --mode validate -c
    - require:
      - file: nuncio-binary
      - file: nuncio-config-dir

nuncio-environment:
  file.managed:
    - name: /etc/systemd/system/nuncio.service.d/pillar.conf
    - makedirs: True
    - contents: |
        [Service]
        Environment=NUNCIO_DRAIN_TIME_S={{ nuncio.get('drain_time_s', 30) }}
        Environment=NUNCIO_PARENT_SHUTDOWN_TIME_S={{ nuncio.get('parent_shutdown_time_s', 60) }}

nuncio-unit:
  file.managed:
    - name: /etc/systemd/system/nuncio.service
    - source: salt://systemd/nuncio.service

nuncio-migrate-requests:
  sysctl.present:
    - name: net.ipv4.tcp_migrate_req
    - value: 1

nuncio-daemon-reload:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: nuncio-unit
      - file: nuncio-environment

nuncio-service:
  service.running:
    - name: nuncio
    - enable: True
    # a change reloads (the hot restart: systemctl reload), never restarts
    - reload: True
    - require:
      - user: nuncio-user
      - module: nuncio-daemon-reload
      - sysctl: nuncio-migrate-requests
    - watch:
      - file: nuncio-binary
      - file: nuncio-start-script
      - file: nuncio-bootstrap
      - file: nuncio-unit
      - file: nuncio-environment
