package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newServiceCmd() *cobra.Command {
	var user, dataroot, binary, host string
	var port int
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Print a systemd unit that runs vserv as a dedicated user with hardening",
		Long: `vserv service prints a systemd unit. Save it as
/etc/systemd/system/vserv.service, create the user (useradd --system --home-dir
DATAROOT vserv), then: systemctl daemon-reload && systemctl enable --now vserv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), `[Unit]
Description=vserv encrypted ledger server
After=network-online.target
Wants=network-online.target

[Service]
User=%[1]s
Group=%[1]s
ExecStart=%[2]s serve -n %[4]s -p %[5]d -r %[3]s -P
Restart=on-failure
RestartSec=2s
TimeoutStopSec=20s
StateDirectory=vserv
StateDirectoryMode=0700
UMask=0077
NoNewPrivileges=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectSystem=strict
ProtectHome=yes
ReadWritePaths=%[3]s
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
CapabilityBoundingSet=
AmbientCapabilities=
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`, user, binary, dataroot, host, port)
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "vserv", "system user to run as")
	cmd.Flags().StringVarP(&dataroot, "dataroot", "r", "/var/lib/vserv", "data directory")
	cmd.Flags().StringVar(&binary, "binary", "/usr/local/bin/vserv", "path of the vserv binary")
	cmd.Flags().StringVarP(&host, "host", "n", "0.0.0.0", "address to listen on")
	cmd.Flags().IntVarP(&port, "port", "p", 6666, "TCP port")
	return cmd
}
