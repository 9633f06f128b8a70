#!/usr/bin/perl
# A SIP caller on Net::SIP (Debian's libnet-sip-perl): calls TO from LEG, sends the raw G.711 audio of SEND
# as RTP in 20 ms packets, writes what it receives to RECV, presses the DTMF keys of DTMF (RFC 2833/4733
# events) once SEND is done, waits HOLD seconds and hangs up with BYE. Extra SIP headers: --header 'Name: value'.
use strict;
use warnings;
use Getopt::Long;
use IO::Socket::INET;
use Net::SIP;

my ($leg, $to, $send, $recv, $codec, $dtmf, $hold, @headers) = ('', '', '', '', 'PCMU', '', 3);
GetOptions('leg=s' => \$leg, 'to=s' => \$to, 'send=s' => \$send, 'recv=s' => \$recv, 'codec=s' => \$codec,
           'dtmf=s' => \$dtmf, 'hold=f' => \$hold, 'header=s' => \@headers) or die "bad options\n";
my ($host, $port) = split /:/, $leg;
my $socket = IO::Socket::INET->new(Proto => 'udp', LocalAddr => $host, LocalPort => $port) or die "leg: $!\n";
my $ua = Net::SIP::Simple->new(from => "sip:caller\@$leg", legs => [Net::SIP::Leg->new(sock => $socket)]);
my %sip_header = map { split /:\s*/, $_, 2 } @headers;
my $rtp_param = $codec eq 'PCMA' ? [8, 160, 160 / 8000, 'PCMA/8000'] : [0, 160, 160 / 8000];

# Like a phone, it goes on sending (silence) after SEND, until it hangs up; DTMF events go between the packets.
open(my $in, '<:raw', $send) or die "send: $!\n";
my $audio = do { local $/; <$in> };
my $silence = chr($codec eq 'PCMA' ? 0xD5 : 0xFF) x 160;
my ($offset, $sent, $hung_up) = (0, 0, 0);
my $next_frame = sub {
    my $frame = substr($audio, $offset, 160);
    $offset += 160;
    return $frame if length($frame) == 160;
    $sent = 1;
    return $silence;
};
my $call = $ua->invite($to,
    init_media => $ua->rtp('media_send_recv', $next_frame, 1, $recv),
    rtp_param => $rtp_param,
    sip_header => \%sip_header,
    recv_bye => \$hung_up,
) or die "invite failed: " . $ua->error . "\n";
die "invite failed: " . $call->error . "\n" if $call->error;
print "answered\n";
$ua->loop(60, \$sent, \$hung_up);
die "Parley hung up\n" if $hung_up;
print "sent\n";
if ($dtmf) {
    my $pressed;
    $call->dtmf($dtmf, methods => 'rfc2833', cb_final => \$pressed);
    $ua->loop(10, \$pressed);
    print "pressed $dtmf\n";
}
$ua->loop($hold, \$hung_up);
my $bye_done;
$call->bye(cb_final => \$bye_done);
$ua->loop(5, \$bye_done);
print "hung up\n";
